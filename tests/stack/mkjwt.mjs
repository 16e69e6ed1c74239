#!/usr/bin/env node
// mkjwt.mjs: secrets and legacy HS256 JWTs for the loopback test stack.
//
//   node mkjwt.mjs secret
//       prints a random 64-character hex secret (no newline)
//   node mkjwt.mjs sign --secret-file FILE [options]
//       prints an HS256 JWT (no newline). Options:
//         --role ROLE        "role" claim (default: anon)
//         --sub UUID         "sub" claim
//         --email ADDR       "email" claim
//         --aud AUD          "aud" claim (default: "authenticated" when --sub is given)
//         --iss ISS          "iss" claim (default: supabase-demo)
//         --iat EPOCH        issued-at (default: now)
//         --ttl SECONDS      lifetime: exp = iat + SECONDS (default: 3600)
//         --exp EPOCH        absolute expiry (overrides --ttl)
//         --claims JSON      extra claims merged last (may override the above)
//         --secret STRING    the secret itself instead of --secret-file
//   node mkjwt.mjs verify --secret-file FILE TOKEN
//       exit 0 and print the claims if the signature is valid, else exit 1
//
// Only node's built-in crypto is used.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

function usage(msg) {
  if (msg) process.stderr.write(`mkjwt: ${msg}\n`);
  process.stderr.write('usage: mkjwt.mjs secret | sign --secret-file F [--role R] [--sub S] ... | verify --secret-file F TOKEN\n');
  process.exit(2);
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function parseArgs(argv) {
  const opts = {};
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const key = a.slice(2);
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      opts[key] = argv[++i];
    } else {
      rest.push(a);
    }
  }
  return { opts, rest };
}

function loadSecret(opts) {
  if (opts.secret !== undefined) return opts.secret;
  if (opts['secret-file'] === undefined) usage('--secret-file or --secret is required');
  // Trim a trailing newline in case the file was written by hand.
  return readFileSync(opts['secret-file'], 'utf8').replace(/\r?\n$/, '');
}

function toInt(name, v) {
  if (!/^-?\d+$/.test(v)) usage(`--${name} must be an integer`);
  return Number(v);
}

export function sign(claims, secret) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest();
  return `${header}.${payload}.${b64url(sig)}`;
}

export function verify(token, secret) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const expect = createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== expect.length || !timingSafeEqual(got, expect)) return null;
  try {
    return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return null;
  }
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'secret') {
  process.stdout.write(randomBytes(32).toString('hex'));
} else if (cmd === 'sign') {
  const { opts, rest } = parseArgs(args);
  if (rest.length) usage(`unexpected argument ${rest[0]}`);
  const secret = loadSecret(opts);
  const iat = opts.iat !== undefined ? toInt('iat', opts.iat) : Math.floor(Date.now() / 1000);
  const exp = opts.exp !== undefined ? toInt('exp', opts.exp)
    : iat + (opts.ttl !== undefined ? toInt('ttl', opts.ttl) : 3600);
  const claims = {};
  if (opts.aud !== undefined) claims.aud = opts.aud;
  else if (opts.sub !== undefined) claims.aud = 'authenticated';
  if (opts.sub !== undefined) claims.sub = opts.sub;
  if (opts.email !== undefined) claims.email = opts.email;
  claims.role = opts.role ?? 'anon';
  claims.iss = opts.iss ?? 'supabase-demo';
  claims.iat = iat;
  claims.exp = exp;
  if (opts.claims !== undefined) {
    let extra;
    try { extra = JSON.parse(opts.claims); } catch { usage('--claims is not valid JSON'); }
    Object.assign(claims, extra);
  }
  process.stdout.write(sign(claims, secret));
} else if (cmd === 'verify') {
  const { opts, rest } = parseArgs(args);
  if (rest.length !== 1) usage('verify takes one token');
  const claims = verify(rest[0], loadSecret(opts));
  if (!claims) { process.stderr.write('mkjwt: invalid signature\n'); process.exit(1); }
  process.stdout.write(JSON.stringify(claims) + '\n');
} else {
  usage(cmd ? `unknown command ${cmd}` : undefined);
}
