// ops-functions.mjs: functions.invoke with JSON, text and binary bodies and
// answers, custom headers, GET, and error statuses.
import { fnResult } from './lib.mjs';
import { ok, all } from './ops-rest.mjs';

const op = (name, run, expect = ok) => ({ area: 'functions', name, run, expect });
// The echo function reflects the request headers that reached it, so its
// answer carries the apikey/Authorization that went upstream: the secret scan
// skips exactly those two reflected values (run.mjs, reflectsRequest).
const echoOp = (name, run, expect = ok) => ({ ...op(name, run, expect), reflectsRequest: true });
const httpErr = (status) => (v) =>
  v.error && v.error.name === 'FunctionsHttpError' && v.error.context && v.error.context.status === status
    ? null : `expected FunctionsHttpError ${status}, got ${JSON.stringify(v.error)}`;

// echo reflects every request header, the apikey and Authorization that
// went upstream included; only what the client chose to send is kept.
async function echo(r) {
  const v = await fnResult(r);
  if (v.data && typeof v.data === 'object' && v.data.headers) {
    const h = v.data.headers;
    v.data = {
      method: v.data.method, path: v.data.path, query: v.data.query,
      body: v.data.body, body_length: v.data.body_length, body_base64: v.data.body_base64,
      'content-type': h['content-type'] ?? null, 'x-custom': h['x-custom'] ?? null,
      'x-region': h['x-region'] ?? null, authorized: typeof h.authorization === 'string',
    };
  }
  return v;
}

const bin = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7 + 3) & 0xff);

export const functionsOps = [
  op('invoke JSON', async (c) => fnResult(await c.anon.functions.invoke('hello', { body: { name: 'World' } })),
    all(ok, (v) => (v.data && v.data.message === 'Hello World!' ? null : `unexpected ${JSON.stringify(v.data)}`))),
  op('invoke no body', async (c) => fnResult(await c.anon.functions.invoke('hello'))),
  op('invoke GET', async (c) => fnResult(await c.anon.functions.invoke('hello?name=get', { method: 'GET' }))),
  op('invoke text answer', async (c) => fnResult(await c.anon.functions.invoke('text')),
    all(ok, (v) => (typeof v.data === 'string' ? null : 'expected text'))),
  echoOp('invoke text body', async (c) => echo(await c.anon.functions.invoke('echo', { body: 'plain text body' })),
    all(ok, (v) => (v.data.body === 'plain text body' ? null : 'body not echoed'))),
  op('invoke binary answer', async (c) => fnResult(await c.anon.functions.invoke('binary?size=70000', { method: 'GET' })),
    all(ok, (v) => (v.data && v.data.blob && v.data.blob.size === 70000 ? null : `expected 70000 bytes: ${JSON.stringify(v.data)}`))),
  op('invoke binary body', async (c) => fnResult(await c.anon.functions.invoke('sink', { body: bin.buffer })),
    all(ok, (v) => (v.data && v.data.bytes === 1000 ? null : `unexpected ${JSON.stringify(v.data)}`))),
  echoOp('invoke binary body echoed', async (c) => echo(await c.anon.functions.invoke('echo', { body: new Blob([bin], { type: 'application/x-test' }) }))),
  echoOp('invoke custom headers', async (c) => echo(await c.anon.functions.invoke('echo', { body: { a: 1 }, headers: { 'x-custom': 'yes' } })),
  all(ok, (v) => (v.data['x-custom'] === 'yes' ? null : 'x-custom not passed'))),
  echoOp('invoke region', async (c) => echo(await c.anon.functions.invoke('echo', { body: {}, region: 'eu-west-1' }))),
  echoOp('invoke as user', async (c) => echo(await c.s.user.functions.invoke('echo', { body: { who: 'user' } })),
    all(ok, (v) => (v.data.authorized ? null : 'no Authorization upstream'))),
  op('invoke (error 400 from the function)', async (c) => fnResult(await c.anon.functions.invoke('hello', { body: 'not json', headers: { 'content-type': 'application/json' } })), httpErr(400)),
  op('invoke (error status 418)', async (c) => fnResult(await c.anon.functions.invoke('status?code=418')), httpErr(418)),
  op('invoke (error status 500)', async (c) => fnResult(await c.anon.functions.invoke('status?code=500')), httpErr(500)),
  op('invoke (error 404 unknown function)', async (c) => fnResult(await c.anon.functions.invoke('no-such-function')), httpErr(404)),
  op('invoke (relay error)', async (c) => fnResult(await c.anon.functions.invoke('status?code=502&relay=1')),
    (v) => (v.error && v.error.name === 'FunctionsRelayError' ? null : `expected FunctionsRelayError: ${JSON.stringify(v.error)}`)),
];
