#!/usr/bin/env node
// run.mjs: supabase-js conformance through supagate.
//
// Every operation of the client reference runs twice with supabase-js
// 2.109.0 (ws as the realtime transport, never connected):
//   direct  a client on $GATEWAY_URL with the real anon key;
//   proxy   a client on $SUPAGATE_URL with a placeholder key.
// Before each side the database and storage are reset, so both start from
// the same state; auth users are per side (the side tag in their addresses
// is normalised away). Results are normalised (ids, times, tokens, the base
// URL, signatures) and must be equal; each side must also meet the
// operation's own expectation. Everything the proxy-side client received
// (every response body and header from supagate, error objects, URLs) and
// supagate's log must not contain the anon key, the service key or the JWT
// secret; the log must not contain any user token either.
//
// Environment: SUPAGATE_URL, GATEWAY_URL, ANON_KEY_FILE, SERVICE_KEY_FILE,
// JWT_SECRET_FILE, AUTH_URL and STORAGE_URL (emulator control endpoints),
// STACK_DIR (for tests/stack/stack-reset); optional SUPAGATE_LOG (a file to
// scan), CONFORMANCE_REPORT (where to write the report), CONFORMANCE_ONLY (a
// regular expression selecting operations by "area/name").
// Exit status: 0 when every check passes, 1 otherwise, 2 on a usage error.
import { createClient } from '@supabase/supabase-js';
import ws from 'ws';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { normalise, diff, secretNeedles, findSecrets, short, errObj } from './lib.mjs';
import { restOps, restUserOps } from './ops-rest.mjs';
import { authOps, authTailOps } from './ops-auth.mjs';
import { functionsOps } from './ops-functions.mjs';
import { storageOps } from './ops-storage.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const PLACEHOLDER_KEY = 'PLACEHOLDER_ANON_KEY';
const OP_TIMEOUT_MS = 20000;
const RUN_ID = `${Date.now().toString(36)}${process.pid.toString(36)}`;

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`run.mjs: $${name} is required`);
    process.exit(2);
  }
  return v;
}
const readSecret = (f) => readFileSync(f, 'utf8').replace(/\r?\n$/, '');

const env = {
  supagate: need('SUPAGATE_URL').replace(/\/$/, ''),
  gateway: need('GATEWAY_URL').replace(/\/$/, ''),
  anonKey: readSecret(need('ANON_KEY_FILE')),
  serviceKey: readSecret(need('SERVICE_KEY_FILE')),
  jwtSecret: readSecret(need('JWT_SECRET_FILE')),
  authCtl: need('AUTH_URL').replace(/\/$/, ''),
  storageCtl: need('STORAGE_URL').replace(/\/$/, ''),
  stackDir: need('STACK_DIR'),
  log: process.env.SUPAGATE_LOG || '',
  report: process.env.CONFORMANCE_REPORT || '',
  only: process.env.CONFORMANCE_ONLY ? new RegExp(process.env.CONFORMANCE_ONLY) : null,
};
for (const u of [env.supagate, env.gateway, env.authCtl, env.storageCtl]) {
  const h = new URL(u).hostname;
  if (h !== '127.0.0.1' && h !== 'localhost' && h !== '[::1]') {
    console.error(`run.mjs: refusing non-loopback URL ${u}`);
    process.exit(2);
  }
}
const needles = secretNeedles({ 'anon key': env.anonKey, 'service key': env.serviceKey, 'JWT secret': env.jwtSecret });

// Order matters: later operations use state that earlier ones left in ctx.s.
const OPS = [...restOps, ...authOps, ...restUserOps, ...functionsOps, ...storageOps, ...authTailOps]
  .filter((o) => !env.only || env.only.test(`${o.area}/${o.name}`));

// ---------------------------------------------------------------------------
// Recording fetch: everything the proxy-side client receives from supagate.
// ---------------------------------------------------------------------------
const realFetch = globalThis.fetch;
let recording = null; // { prefix, pending: [promise of text] }
globalThis.fetch = async (input, init) => {
  const res = await realFetch(input, init);
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  if (recording && url.startsWith(recording.prefix)) {
    const head = [`${res.status} ${url}`];
    for (const [k, v] of res.headers) head.push(`${k}: ${v}`);
    const rec = recording;
    rec.pending.push(res.clone().text().then((t) => `${head.join('\n')}\n\n${t}`, () => head.join('\n')));
  }
  return res;
};

// ---------------------------------------------------------------------------
// Sides
// ---------------------------------------------------------------------------
function makeCtx(side) {
  const base = side === 'proxy' ? env.supagate : env.gateway;
  const key = side === 'proxy' ? PLACEHOLDER_KEY : env.anonKey;
  // Auth users outlive a run (the emulator keeps them): tag them per side and run.
  const tag = `${side === 'proxy' ? 'zqproxy' : 'zqdirect'}${RUN_ID}`;
  const clients = [];
  const client = (headers) => {
    const c = createClient(base, key, {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      realtime: { transport: ws },
      ...(headers ? { global: { headers } } : {}),
    });
    clients.push(c);
    return c;
  };
  const tokens = new Set();
  return {
    side, base, key, tag, clients, tokens, client,
    anon: client(),
    s: {},
    authCtl: env.authCtl,
    email: (name) => `${name}.${tag}@example.com`,
    track: (session) => {
      if (!session) return;
      for (const t of [session.access_token, session.refresh_token]) if (t) tokens.add(t);
    },
  };
}

async function resetStack() {
  execFileSync(path.join(ROOT, 'tests/stack/stack-reset'), [env.stackDir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const r = await realFetch(`${env.storageCtl}/_emu/reset`, { method: 'POST' });
  if (!r.ok) throw new Error(`storage reset answered ${r.status}`);
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms`)), ms); }),
  ]);
}

async function runSide(side) {
  await resetStack();
  const ctx = makeCtx(side);
  const results = [];
  for (const op of OPS) {
    const r = { value: undefined, threw: null, problem: null, received: [] };
    if (side === 'proxy') recording = { prefix: env.supagate, pending: [] };
    try {
      r.value = await withTimeout(Promise.resolve().then(() => op.run(ctx)), OP_TIMEOUT_MS, `${op.area}/${op.name}`);
      r.problem = op.expect ? op.expect(r.value, ctx) : null;
    } catch (e) {
      r.threw = `${e && e.name}: ${e && e.message}`;
      r.value = { threw: errObj(e) };
    }
    if (recording) {
      r.received = await Promise.all(recording.pending);
      recording = null;
    }
    results.push(r);
  }
  return { ctx, results };
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------
const started = Date.now();
const direct = await runSide('direct');
const proxy = await runSide('proxy');

// The echo function's answer reflects the request headers that reached it:
// drop only the reflected apikey and Authorization before the scan.
function scrubReflected(text) {
  const i = text.indexOf('\n\n');
  if (i < 0) return text;
  try {
    const body = JSON.parse(text.slice(i + 2));
    if (body && body.headers) {
      delete body.headers.apikey;
      delete body.headers.authorization;
    }
    return `${text.slice(0, i)}\n\n${JSON.stringify(body)}`;
  } catch {
    return text;
  }
}

const lines = [];
let failed = 0;
const byArea = {};
OPS.forEach((op, i) => {
  const d = direct.results[i];
  const p = proxy.results[i];
  const why = [];
  if (d.threw) why.push(`direct threw ${d.threw}`);
  else if (d.problem) why.push(`direct (stack): ${d.problem}`);
  if (p.threw) why.push(`supagate side threw ${p.threw}`);
  else if (p.problem) why.push(`supagate side: ${p.problem}`);
  const nd = normalise(d.value, env.gateway);
  const np = normalise(p.value, env.supagate);
  const diffs = diff(nd, np);
  if (diffs.length) why.push(`differs from direct: ${diffs.join('; ')}`);
  const received = op.reflectsRequest ? p.received.map(scrubReflected) : p.received;
  const seen = [JSON.stringify(p.value) ?? '', ...received].join('\n');
  const leaked = findSecrets(seen, needles);
  if (leaked.length) why.push(`client received the ${leaked.join(', ')}`);
  const a = (byArea[op.area] ??= { pass: 0, fail: 0 });
  if (why.length) {
    failed++;
    a.fail++;
    lines.push(`FAIL  ${op.area}/${op.name}`);
    for (const w of why) lines.push(`        ${w}`);
    if (diffs.length) {
      lines.push(`        direct:   ${short(nd, 600)}`);
      lines.push(`        supagate: ${short(np, 600)}`);
    }
  } else {
    a.pass++;
    lines.push(`PASS  ${op.area}/${op.name}`);
  }
});

// supagate's log: no keys, no secret, no user token.
function check(name, problem) {
  const a = (byArea.secrets ??= { pass: 0, fail: 0 });
  if (problem) {
    failed++;
    a.fail++;
    lines.push(`FAIL  secrets/${name}\n        ${problem}`);
  } else {
    a.pass++;
    lines.push(`PASS  secrets/${name}`);
  }
}
if (env.log && existsSync(env.log)) {
  const log = readFileSync(env.log, 'utf8');
  const leaked = findSecrets(log, needles);
  check('supagate log has no key or JWT secret', leaked.length ? `supagate's log contains the ${leaked.join(', ')}` : null);
  const tokens = [...proxy.ctx.tokens].filter((t) => log.includes(t));
  check('supagate log has no user token', tokens.length ? `supagate's log contains ${tokens.length} access/refresh token(s) of signed-in users` : null);
  // One access line per request: every response the proxy-side client got
  // came from supagate and was logged.
  const accessLines = log.split('\n').filter((l) => /^supagate: \d+ [A-Z]+ \/\S* \d{3} /.test(l)).length;
  const requests = proxy.results.reduce((n, r) => n + r.received.length, 0);
  check('supagate logged every request (access lines)', accessLines >= requests && requests > 0
    ? null : `${requests} responses from supagate, ${accessLines} access lines in its log`);
} else {
  check('supagate log scanned', env.log ? `${env.log} does not exist` : 'SUPAGATE_LOG not set');
}

const total = Object.values(byArea).reduce((n, a) => n + a.pass + a.fail, 0);
const summary = [
  '',
  `supabase-js 2.109.0 conformance through supagate (${env.supagate}) vs direct (${env.gateway})`,
  ...Object.entries(byArea).map(([k, a]) => `  ${k.padEnd(10)} ${a.pass} pass, ${a.fail} fail`),
  `  total      ${total - failed} pass, ${failed} fail   (${((Date.now() - started) / 1000).toFixed(1)} s)`,
];
const report = `${lines.join('\n')}\n${summary.join('\n')}\n`;
if (env.report) writeFileSync(env.report, report);
process.stdout.write(report);
for (const c of [...direct.ctx.clients, ...proxy.ctx.clients]) c.removeAllChannels().catch(() => {});
process.exit(failed ? 1 : 0);
