// lib.mjs: helpers of the supabase-js conformance suite: turning client
// results into plain JSON, normalising volatile fields, diffing, scanning for
// secrets, and RFC 6238 TOTP.
import crypto from 'node:crypto';

// ---------------------------------------------------------------------------
// Plain JSON from what supabase-js hands back
// ---------------------------------------------------------------------------

// errObj(e): an Error (PostgrestError, AuthApiError, StorageApiError, …) as a
// plain object: name, message and every own enumerable field except functions
// and Response contexts (functions errors are read by fnResult()).
export function errObj(e) {
  if (e === null || e === undefined) return null;
  if (!(e instanceof Error) && typeof e !== 'object') return { value: String(e) };
  const o = {};
  if (e.name !== undefined) o.name = e.name;
  if (e.message !== undefined) o.message = e.message;
  for (const [k, v] of Object.entries(e)) {
    if (typeof v === 'function' || k === 'context' || k === 'stack') continue;
    o[k] = v;
  }
  return o;
}

// pg(r): a PostgREST response { data, error, count, status }.
export function pg(r) {
  return { data: r.data ?? null, error: errObj(r.error), count: r.count ?? null, status: r.status };
}

// au(r): an auth-js response { data, error }.
export function au(r) {
  return { data: r.data ?? null, error: errObj(r.error) };
}

// st(r): a storage-js response; Blobs become { blob: { type, size, text } }.
export async function st(r) {
  return { data: await plain(r.data), error: errObj(r.error) };
}

// plain(v): Blob/ArrayBuffer/typed arrays become JSON-friendly descriptions.
export async function plain(v) {
  if (v instanceof Blob) return { blob: await bytesDesc(new Uint8Array(await v.arrayBuffer()), v.type) };
  if (v instanceof ArrayBuffer) return { bytes: await bytesDesc(new Uint8Array(v)) };
  if (ArrayBuffer.isView(v)) return { bytes: await bytesDesc(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
  return v ?? null;
}

function bytesDesc(u8, type) {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(u8);
  const printable = /^[\x09\x0a\x0d\x20-\x7e]*$/.test(text);
  return {
    ...(type !== undefined ? { type } : {}),
    size: u8.length,
    sha256: crypto.createHash('sha256').update(u8).digest('hex'),
    ...(printable ? { text } : {}),
  };
}

// fnResult(r): a functions-js response; an HTTP error's context Response is
// read into { status, content_type, body }.
export async function fnResult(r) {
  const out = { data: await plain(r.data), error: errObj(r.error) };
  const ctx = r.error && r.error.context;
  if (ctx && typeof ctx.text === 'function' && typeof ctx.status === 'number') {
    let body = null;
    try {
      const t = await ctx.text();
      try { body = JSON.parse(t); } catch { body = t; }
    } catch (e) {
      body = `<unreadable: ${e.message}>`;
    }
    out.error.context = { status: ctx.status, content_type: ctx.headers.get('content-type'), body };
  }
  return out;
}

// fetchDesc(url, init): a plain fetch (no key) described as
// { status, content_type, content_disposition, body } with bodies hashed.
export async function fetchDesc(url, init = {}) {
  const res = await fetch(url, { redirect: 'manual', ...init });
  const u8 = new Uint8Array(await res.arrayBuffer());
  const ct = res.headers.get('content-type');
  let body;
  if (ct && ct.startsWith('application/json')) {
    try { body = JSON.parse(new TextDecoder().decode(u8)); } catch { body = bytesDesc(u8); }
  } else {
    body = bytesDesc(u8);
  }
  const out = { status: res.status, content_type: ct, body };
  for (const h of ['content-disposition', 'content-range', 'location', 'etag']) {
    const v = res.headers.get(h);
    if (v !== null) out[h] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Normalisation of volatile fields
// ---------------------------------------------------------------------------

// Keys whose values differ between two otherwise identical runs.
const VOLATILE_KEYS = new Set([
  'access_token', 'refresh_token', 'provider_token', 'token', 'token_hash',
  'expires_at', 'exp', 'iat', 'timestamp', 'created_at', 'updated_at',
  'last_sign_in_at', 'confirmed_at', 'email_confirmed_at', 'phone_confirmed_at',
  'confirmation_sent_at', 'recovery_sent_at', 'email_change_sent_at', 'invited_at',
  'last_modified', 'lastModified', 'last_accessed_at',
  'secret', 'qr_code', 'uri',
]);
// Ids that are uuids are caught by RE_UUID; numeric ids are data and compared.

const RE_JWT = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;
const RE_UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const RE_ISO = /\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d(?::?\d\d)?)?/g;
const RE_HTTPDATE = /(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT/g;
const RE_TOKEN_PARAM = /([?&#](?:token|state|access_token|refresh_token|expires_at|expires_in|provider_token)=)[^&#\s"]*/g;
const RE_SIDE = /zq(?:proxy|direct)[a-z0-9]*/g;

// normString(s, base): the side's base URL becomes <BASE>; tokens, uuids,
// times and the side tag become placeholders.
export function normString(s, base) {
  let t = s;
  if (base) t = t.split(base).join('<BASE>');
  t = t.split(encodeURIComponent(base || '\u0000')).join(encodeURIComponent('<BASE>'));
  return t
    .replace(RE_TOKEN_PARAM, '$1<tok>')
    .replace(RE_JWT, '<jwt>')
    .replace(RE_UUID, '<uuid>')
    .replace(RE_ISO, '<time>')
    .replace(RE_HTTPDATE, '<httpdate>')
    .replace(RE_SIDE, 'zqSIDE');
}

export function normalise(v, base, key = null) {
  if (v === null || v === undefined) return v ?? null;
  if (key !== null && VOLATILE_KEYS.has(key) && (typeof v === 'string' || typeof v === 'number')) {
    return `<${typeof v}>`;
  }
  // setSession() computes expires_in from expires_at and the clock.
  if (key === 'expires_in' && typeof v === 'number') return Math.round(v / 10) * 10;
  if (typeof v === 'string') return normString(v, base);
  if (Array.isArray(v)) return v.map((x) => normalise(x, base));
  if (typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v).sort()) {
      if (v[k] === undefined) continue;
      o[normString(k, base)] = normalise(v[k], base, k);
    }
    return o;
  }
  return v;
}

// diff(a, b): a list of "path: expected X, got Y" strings (empty if equal).
export function diff(a, b, path = '$', out = []) {
  if (out.length >= 8) return out;
  if (a === b) return out;
  const ta = Array.isArray(a) ? 'array' : a === null ? 'null' : typeof a;
  const tb = Array.isArray(b) ? 'array' : b === null ? 'null' : typeof b;
  if (ta !== tb || (ta !== 'object' && ta !== 'array')) {
    out.push(`${path}: expected ${short(a)}, got ${short(b)}`);
    return out;
  }
  if (ta === 'array') {
    if (a.length !== b.length) out.push(`${path}: expected ${a.length} items, got ${b.length}`);
    for (let i = 0; i < Math.min(a.length, b.length); i++) diff(a[i], b[i], `${path}[${i}]`, out);
    return out;
  }
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (!(k in b)) out.push(`${path}.${k}: missing (expected ${short(a[k])})`);
    else if (!(k in a)) out.push(`${path}.${k}: unexpected ${short(b[k])}`);
    else diff(a[k], b[k], `${path}.${k}`, out);
  }
  return out;
}

export function short(v, n = 200) {
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

// secretNeedles(named): for each secret, the strings that must never appear:
// the value itself, its URL-encoded and base64 forms, and for a JWT its
// signature segment.
export function secretNeedles(named) {
  const needles = [];
  for (const [name, value] of Object.entries(named)) {
    if (!value) continue;
    const forms = new Set([value, encodeURIComponent(value), Buffer.from(value).toString('base64')]);
    const parts = value.split('.');
    if (parts.length === 3 && parts[2].length >= 16) forms.add(parts[2]);
    for (const f of forms) needles.push({ name, needle: f });
  }
  return needles;
}

// findSecrets(text, needles): names of the secrets found in text.
export function findSecrets(text, needles) {
  const found = new Set();
  for (const { name, needle } of needles) if (text.includes(needle)) found.add(name);
  return [...found];
}

// ---------------------------------------------------------------------------
// RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30 s steps) over an RFC 4648 base32 key
// ---------------------------------------------------------------------------
const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function base32Decode(s) {
  let bits = 0, value = 0;
  const out = [];
  for (const ch of s.toUpperCase().replace(/[=\s]/g, '')) {
    const i = B32.indexOf(ch);
    if (i < 0) throw new Error(`bad base32 character ${ch}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

export function totp(secretB32, timeMs = Date.now(), step = 30, digits = 6) {
  const counter = BigInt(Math.floor(timeMs / 1000 / step));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(counter);
  const h = crypto.createHmac('sha1', base32Decode(secretB32)).update(msg).digest();
  const off = h[h.length - 1] & 0x0f;
  const bin = ((h[off] & 0x7f) << 24) | (h[off + 1] << 16) | (h[off + 2] << 8) | h[off + 3];
  return String(bin % 10 ** digits).padStart(digits, '0');
}
