#!/usr/bin/env node
// session.mjs: supabase-js with a placeholder key, through a supagate in
// auth-mode session in front of the real stack, sees exactly the session
// user's rows of the RLS-protected table todos. Run by tests/check_session_e2e
// (case supabase_js), which seeds the users and rows and starts supagate.
//
// Environment: SUPAGATE_URL, EXPECT_USER (the session user's id),
// EXPECT_TASKS ("a|b": that user's tasks), READ_MS (keep reading this long, so
// the reads span a token refresh), SUPAGATE_NODE_MODULES (supabase-js, ws).
// Prints "session.mjs: ok" and exits 0, or exits 1 on the first mismatch.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const env = (k) => {
  const v = process.env[k];
  if (!v) { console.error(`session.mjs: $${k} is required`); process.exit(2); }
  return v;
};
const nm = process.env.SUPAGATE_NODE_MODULES || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../node_modules');
const require = createRequire(path.join(nm, 'noop.js'));
const { createClient } = require('@supabase/supabase-js');
const ws = require('ws');

const url = env('SUPAGATE_URL');
const user = env('EXPECT_USER');
const tasks = env('EXPECT_TASKS').split('|').sort();
const readMs = Number(process.env.READ_MS || 0);

// supabase-js needs some key: supagate replaces it with the session's token
const sb = createClient(url, 'placeholder-key', {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: ws },
});

async function readAll(want) {
  const r = await sb.from('todos').select('id, user_id, task').order('id');
  assert.equal(r.error, null, `select: ${JSON.stringify(r.error)}`);
  assert.equal(r.status, 200);
  for (const row of r.data) assert.equal(row.user_id, user, `a row of another user: ${JSON.stringify(row)}`);
  assert.deepEqual(r.data.map((x) => x.task).sort(), want);
  return r.data.length;
}

let reads = 0;
const end = Date.now() + readMs;
do {
  await readAll(tasks);
  reads++;
  if (Date.now() < end) await new Promise((res) => setTimeout(res, 250));
} while (Date.now() < end);

// count and a filter that names another user's rows: still only ours
let r = await sb.from('todos').select('*', { count: 'exact', head: true });
assert.equal(r.error, null);
assert.equal(r.count, tasks.length);
r = await sb.from('todos').select('task').neq('user_id', user);
assert.equal(r.error, null);
assert.deepEqual(r.data, []);

// a write through supagate belongs to the session user too
r = await sb.from('todos').insert({ task: 'js-s three' }).select('user_id, task');
assert.equal(r.error, null, `insert: ${JSON.stringify(r.error)}`);
assert.deepEqual(r.data, [{ user_id: user, task: 'js-s three' }]);
await readAll([...tasks, 'js-s three'].sort());

sb.removeAllChannels();
console.log(`session.mjs: ok (${reads} reads as ${user})`);
process.exit(0);
