// main.ts: the Edge Functions router of supagate's loopback test stack.
//
//   deno run --allow-net=127.0.0.1 --allow-read --allow-env main.ts --port P [--host 127.0.0.1]
//
// Serves ANY /<name>[/sub/path] by calling the default export of
// ./<name>/index.ts, as the Supabase functions runtime serves a function
// under /functions/v1/<name> (the gateway strips /functions/v1).
//
// Contract for a function module (functions/<name>/index.ts):
//   export default async (req: Request) => Response   // required
//   export const verifyJwt = false                      // optional, default true
// req.url is http://<host>/<name>[/sub]?query, exactly as it reached the router.
//
// verify_jwt (as on Supabase): unless a function exports verifyJwt = false, the
// router requires "Authorization: Bearer <HS256 JWT>" signed with the secret in
// $JWT_SECRET_FILE and not expired, and otherwise answers 401 with
// {"code":401,"message":"Missing authorization header"} or
// {"code":401,"message":"Invalid JWT"} without running the function.
//
// Router endpoints: GET /_internal/health -> 200 "ok";
//                   GET /_internal/stats  -> {"<fn>": invocations, ...}.
// Only Deno built-ins are used: nothing is downloaded at run time.

type Handler = (req: Request) => Response | Promise<Response>;
interface FnModule { default: Handler; verifyJwt?: boolean }

function arg(name: string, dflt?: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : dflt;
}

const port = Number(arg('port', Deno.env.get('PORT') ?? '0'));
const hostname = arg('host', '127.0.0.1')!;
const secretFile = arg('jwt-secret-file', Deno.env.get('JWT_SECRET_FILE'));
if (!secretFile) {
  console.error('main.ts: --jwt-secret-file or $JWT_SECRET_FILE is required');
  Deno.exit(2);
}
const secret = (await Deno.readTextFile(secretFile)).replace(/\r?\n$/, '');
const hmacKey = await crypto.subtle.importKey(
  'raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'],
);

const fnRoot = new URL('./', import.meta.url);
const modules = new Map<string, FnModule>();
const stats: Record<string, number> = {};

function json(status: number, body: unknown, extra: HeadersInit = {}): Response {
  const headers = new Headers(extra);
  headers.set('content-type', 'application/json');
  return new Response(JSON.stringify(body), { status, headers });
}

function b64urlDecode(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error('bad base64url');
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  const bin = atob(b64);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

// Returns null when the JWT is acceptable, else the 401 message.
async function checkJwt(req: Request): Promise<string | null> {
  const auth = req.headers.get('authorization');
  if (!auth) return 'Missing authorization header';
  const m = /^Bearer\s+(\S+)$/i.exec(auth);
  if (!m) return 'Invalid JWT';
  const parts = m[1].split('.');
  if (parts.length !== 3) return 'Invalid JWT';
  try {
    const header = JSON.parse(new TextDecoder().decode(b64urlDecode(parts[0])));
    if (header.alg !== 'HS256') return 'Invalid JWT';
    const ok = await crypto.subtle.verify(
      'HMAC', hmacKey, b64urlDecode(parts[2]), new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
    );
    if (!ok) return 'Invalid JWT';
    const claims = JSON.parse(new TextDecoder().decode(b64urlDecode(parts[1])));
    if (typeof claims !== 'object' || claims === null) return 'Invalid JWT';
    if (typeof claims.exp === 'number' && claims.exp <= Date.now() / 1000) return 'Invalid JWT';
    return null;
  } catch {
    return 'Invalid JWT';
  }
}

async function loadFunction(name: string): Promise<FnModule | null> {
  if (!/^[A-Za-z0-9_-]+$/.test(name) || name.startsWith('_')) return null;
  const cached = modules.get(name);
  if (cached) return cached;
  const url = new URL(`./${name}/index.ts`, fnRoot);
  try {
    await Deno.stat(url);
  } catch {
    return null;
  }
  const mod = (await import(url.href)) as FnModule;
  if (typeof mod.default !== 'function') throw new Error(`${name}: no default export`);
  modules.set(name, mod);
  return mod;
}

async function route(req: Request): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname === '/_internal/health') return new Response('ok\n');
  if (url.pathname === '/_internal/stats') return json(200, stats);
  const name = url.pathname.split('/')[1] ?? '';
  let mod: FnModule | null;
  try {
    mod = await loadFunction(name);
  } catch (e) {
    console.error(`load ${name}:`, e);
    return json(500, { code: 'BOOT_ERROR', message: 'Function failed to start (please check logs)' });
  }
  if (!mod) return json(404, { code: 'NOT_FOUND', message: 'Requested function was not found' });
  if (mod.verifyJwt !== false) {
    const problem = await checkJwt(req);
    if (problem) return json(401, { code: 401, message: problem });
  }
  stats[name] = (stats[name] ?? 0) + 1;
  try {
    return await mod.default(req);
  } catch (e) {
    console.error(`${name}:`, e);
    return json(500, { code: 'WORKER_ERROR', message: 'Function exited due to an error (please check logs)' });
  }
}

Deno.serve({
  hostname,
  port,
  onListen: ({ hostname, port }) => console.log(`functions router listening on http://${hostname}:${port}/`),
}, async (req) => {
  const started = performance.now();
  const res = await route(req);
  const u = new URL(req.url);
  console.log(`${req.method} ${u.pathname}${u.search} ${res.status} ${(performance.now() - started).toFixed(1)}ms`);
  return res;
});
