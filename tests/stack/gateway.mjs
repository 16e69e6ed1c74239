#!/usr/bin/env node
// gateway.mjs: a small Kong-like API gateway for the loopback test stack, so
// that one base URL serves /rest/v1, /auth/v1, /storage/v1 and /functions/v1
// the way a Supabase project URL does (supabase-js needs exactly that).
//
//   node gateway.mjs --host 127.0.0.1 --port 0 --port-file F
//        --anon-key-file F --service-key-file F
//        [--rest URL] [--auth URL] [--storage URL] [--functions URL]
//
// Behaviour, from reference/wire-contract.md §1 (self-hosted kong.yml):
// - the /x/v1 prefix is stripped before forwarding; request and response
//   bodies stream through;
// - /rest/v1 and /auth/v1 (except the open auth routes) need a known apikey
//   (header first, then ?apikey=): none -> 401 "No API key found in request",
//   two -> 401 "Duplicate API key found", unknown -> 401 "Invalid
//   authentication credentials"; the key is forwarded unchanged, as an
//   apikey header (a ?apikey= key is moved out of the query string);
// - rest/auth/storage: an Authorization that is missing or starts with
//   "Bearer sb_" becomes "Bearer <apikey>"; storage has no key check;
// - functions: Authorization untouched, client sb-api-key removed;
// - CORS preflights answered 200 with Kong's defaults, no key needed;
//   responses to requests with Origin get Access-Control-Allow-Origin: *;
// - unconfigured service or unknown prefix -> 404 "no Route matched with those
//   values"; upstream unreachable -> 502; upstream timeout -> 504.
// Node built-ins only.
import http from 'node:http';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    o[argv[i].slice(2)] = argv[++i];
  }
  return o;
}
const opts = parseArgs(process.argv.slice(2));
const readKey = (f) => (f ? readFileSync(f, 'utf8').replace(/\r?\n$/, '') : null);
const KEYS = new Map();
const anon = readKey(opts['anon-key-file']);
const service = readKey(opts['service-key-file']);
if (anon) KEYS.set(anon, 'anon');
if (service) KEYS.set(service, 'service_role');

const SERVICES = {
  rest: { url: opts.rest, keyAuth: true, authz: true, timeoutMs: 60000 },
  auth: { url: opts.auth, keyAuth: true, authz: true, timeoutMs: 60000 },
  storage: { url: opts.storage, keyAuth: false, authz: true, timeoutMs: 300000 },
  functions: { url: opts.functions, keyAuth: false, authz: false, timeoutMs: 150000 },
};
const OPEN_AUTH = ['/verify', '/callback', '/authorize', '/.well-known/jwks.json'];
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

function send(res, status, body, extra = {}) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(data), ...extra });
  res.end(data);
}

// All values of a header, from rawHeaders (node joins duplicates otherwise).
function headerValues(req, name) {
  const out = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() === name) out.push(req.rawHeaders[i + 1]);
  }
  return out;
}

function handle(req, res) {
  const url = new URL(req.url, 'http://gateway.invalid');
  const m = /^\/(rest|auth|storage|functions)\/v1(\/.*)?$/.exec(url.pathname);
  const origin = req.headers.origin;
  const cors = origin ? { 'access-control-allow-origin': '*' } : {};

  if (req.method === 'OPTIONS' && origin && req.headers['access-control-request-method']) {
    res.writeHead(200, {
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT',
      ...(req.headers['access-control-request-headers']
        ? { 'access-control-allow-headers': req.headers['access-control-request-headers'] } : {}),
      'content-length': '0',
    });
    return res.end();
  }
  if (url.pathname === '/_gateway/health') return send(res, 200, { status: 'ok' });
  if (!m || !SERVICES[m[1]].url) return send(res, 404, { message: 'no Route matched with those values' }, cors);

  const name = m[1];
  const svc = SERVICES[name];
  const rest = m[2] ?? '/';
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v;

  // The key: header first, then query string.
  const hdrKeys = headerValues(req, 'apikey');
  const qKeys = url.searchParams.getAll('apikey');
  const keys = hdrKeys.length ? hdrKeys : qKeys;
  const apikey = keys.length === 1 ? keys[0] : null;
  const open = name === 'auth' && OPEN_AUTH.includes(rest);
  if (svc.keyAuth && !open) {
    if (keys.length === 0) {
      return send(res, 401, { message: 'No API key found in request' }, { 'www-authenticate': 'Key realm="kong"', ...cors });
    }
    if (keys.length > 1) return send(res, 401, { message: 'Duplicate API key found' }, cors);
    if (!KEYS.has(apikey)) return send(res, 401, { message: 'Invalid authentication credentials' }, cors);
  }
  if (svc.authz) {
    const authz = headers.authorization;
    if (!authz || /^Bearer sb_/.test(authz)) {
      if (apikey) headers.authorization = `Bearer ${apikey}`;
      else delete headers.authorization;
    }
  } else {
    delete headers['sb-api-key'];
  }

  // PostgREST would read ?apikey= as a column filter (PGRST100), so a key that
  // came in the query string is not forwarded there (the header still is).
  let search = url.search;
  if (qKeys.length && name !== 'functions') {
    search = url.search.replace(/^\?/, '').split('&')
      .filter((p) => p && decodeURIComponent(p.split('=')[0].replace(/\+/g, ' ')) !== 'apikey').join('&');
    search = search ? `?${search}` : '';
    if (!headers.apikey && apikey) headers.apikey = apikey;
  }
  const target = new URL(svc.url);
  const basePath = target.pathname.replace(/\/$/, '');
  const up = http.request({
    hostname: target.hostname,
    port: target.port,
    method: req.method,
    path: basePath + rest + search,
    headers: { ...headers, host: target.host },
  });
  let answered = false;
  up.setTimeout(svc.timeoutMs, () => {
    if (!answered) { answered = true; send(res, 504, { message: 'The upstream server is timing out' }, cors); }
    up.destroy();
  });
  up.on('response', (ur) => {
    answered = true;
    const out = {};
    for (const [k, v] of Object.entries(ur.headers)) if (!HOP.has(k) || k === 'transfer-encoding') out[k] = v;
    delete out['transfer-encoding'];
    Object.assign(out, cors);
    res.writeHead(ur.statusCode, out);
    ur.pipe(res);
    ur.on('error', () => res.destroy());
  });
  up.on('error', () => {
    if (!answered) { answered = true; send(res, 502, { message: 'An invalid response was received from the upstream server' }, cors); }
    else res.destroy();
  });
  res.on('close', () => { if (!res.writableFinished) up.destroy(); });
  req.pipe(up);
}

const server = http.createServer(handle);
server.keepAliveTimeout = 5000;
server.listen({ host: opts.host ?? '127.0.0.1', port: Number(opts.port ?? 0) }, () => {
  const { address, port } = server.address();
  console.log(`gateway listening on http://${address}:${port}/`);
  if (opts['port-file']) {
    writeFileSync(`${opts['port-file']}.tmp`, String(port));
    renameSync(`${opts['port-file']}.tmp`, opts['port-file']);
  }
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); server.closeAllConnections(); process.exit(0); });
