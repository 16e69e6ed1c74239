#!/usr/bin/env node
// freeport.mjs [N]: print N (default 1) distinct free TCP ports on 127.0.0.1,
// one per line. All N sockets are held open until every port is known, so the
// ports are distinct; another process could still take one before we use it,
// which stack-up treats as a start failure.
import { createServer } from 'node:net';

const n = Number(process.argv[2] ?? 1);
if (!Number.isInteger(n) || n < 1 || n > 64) {
  process.stderr.write('usage: freeport.mjs [N]  (1..64)\n');
  process.exit(2);
}

const listen = () => new Promise((resolve, reject) => {
  const srv = createServer();
  srv.once('error', reject);
  srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve(srv));
});

const servers = [];
for (let i = 0; i < n; i++) servers.push(await listen());
process.stdout.write(servers.map((s) => s.address().port).join('\n') + '\n');
await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
