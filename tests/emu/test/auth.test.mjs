// Contract tests for the GoTrue emulator (tests/emu/auth.mjs).
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startAuth } from '../auth.mjs';
import { SECRET, tmpDir, secretFile, anonKey, serviceKey, decodeJwt, call, TEST_TIMEOUT } from '../lib/testutil.mjs';
import { signJwt } from '../lib/common.mjs';

// every test fails within TEST_TIMEOUT instead of hanging (see lib/testutil.mjs)
const T = { timeout: TEST_TIMEOUT };

const V = { 'X-Supabase-Api-Version': '2024-01-01' };
const K = { apikey: anonKey, Authorization: `Bearer ${anonKey}` };

// Independent RFC 6238 implementation for the test (SHA-1, 6 digits, 30 s).
function totpCode(b32, t = Date.now()) {
	const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
	let bits = '';
	for (const ch of b32) bits += A.indexOf(ch).toString(2).padStart(5, '0');
	const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
	const ctr = Buffer.alloc(8);
	ctr.writeBigUInt64BE(BigInt(Math.floor(t / 30000)));
	const h = crypto.createHmac('sha1', key).update(ctr).digest();
	const o = h[19] & 15;
	return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
}

let emu, base;
test.before(async () => {
	emu = await startAuth({ secret: SECRET, port: 0 });
	base = emu.url;
}, T);
test.after(async () => { await emu.close(); }, T);

async function config(c) {
	const r = await call(base, 'POST', '/_emu/config', { body: c });
	assert.equal(r.status, 200);
}
let n = 0;
async function newUser(extra = {}) {
	const email = `user${++n}-${Date.now()}@example.com`;
	const r = await call(base, 'POST', '/signup', { headers: { ...K, ...V }, body: { email, password: 'secret123', data: { n }, ...extra } });
	assert.equal(r.status, 200, r.text);
	return { email, session: r.body };
}
const bearer = (s) => ({ apikey: anonKey, Authorization: `Bearer ${s.access_token}` });

test('apikey is required and checked like the gateway', T, async () => {
	let r = await call(base, 'GET', '/settings');
	assert.equal(r.status, 401);
	assert.equal(r.body.message, 'No API key found in request');
	r = await call(base, 'GET', '/settings', { headers: { apikey: 'nonsense' } });
	assert.equal(r.status, 401);
	assert.equal(r.body.message, 'Invalid API key');
	r = await call(base, 'GET', '/settings', { headers: { apikey: signJwt({ role: 'anon' }, 'other-secret') } });
	assert.equal(r.status, 401);
	r = await call(base, 'GET', `/settings?apikey=${anonKey}`);
	assert.equal(r.status, 200);
	r = await call(base, 'GET', '/auth/v1/settings', { headers: { apikey: serviceKey } });
	assert.equal(r.status, 200);
	assert.equal(typeof r.body.external, 'object');
	assert.equal(r.body.mailer_autoconfirm, true);
	// open routes need no key
	r = await call(base, 'GET', '/.well-known/jwks.json');
	assert.equal(r.status, 200);
	assert.deepEqual(r.body, { keys: [] });
	assert.equal(r.headers.get('cache-control'), 'public, max-age=600');
});

test('signup with autoconfirm returns a session whose JWT PostgREST accepts', T, async () => {
	const { email, session } = await newUser();
	for (const k of ['access_token', 'token_type', 'expires_in', 'expires_at', 'refresh_token', 'user'])
		assert.ok(k in session, k);
	assert.equal(session.token_type, 'bearer');
	assert.equal(session.expires_in, 3600);
	const c = decodeJwt(session.access_token);
	assert.equal(c.role, 'authenticated');
	assert.equal(c.aud, 'authenticated');
	assert.equal(c.email, email);
	assert.equal(c.sub, session.user.id);
	assert.equal(c.aal, 'aal1');
	assert.equal(c.is_anonymous, false);
	assert.ok(c.session_id);
	assert.equal(c.exp - c.iat, 3600);
	assert.deepEqual(c.amr.map((a) => a.method), ['password']);
	assert.equal(session.user.user_metadata.n, n);
	// signature is HS256 with the shared secret
	const [h, p, s] = session.access_token.split('.');
	assert.equal(crypto.createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url'), s);
	// duplicate signup
	const r = await call(base, 'POST', '/signup', { headers: { ...K, ...V }, body: { email, password: 'secret123' } });
	assert.equal(r.status, 422);
	assert.equal(r.body.code, 'user_already_exists');
});

test('signup without autoconfirm returns a user; login needs confirmation via OTP', T, async () => {
	await config({ autoconfirm: false });
	try {
		const email = `confirm-${Date.now()}@example.com`;
		let r = await call(base, 'POST', '/signup', { headers: { ...K, ...V }, body: { email, password: 'secret123' } });
		assert.equal(r.status, 200);
		assert.equal(r.body.access_token, undefined);
		assert.equal(r.body.email, email);
		assert.ok(r.body.confirmation_sent_at);
		r = await call(base, 'POST', '/token?grant_type=password', { headers: { ...K, ...V }, body: { email, password: 'secret123' } });
		assert.equal(r.status, 400);
		assert.equal(r.body.code, 'email_not_confirmed');
		const otp = (await call(base, 'GET', `/_emu/otp?email=${encodeURIComponent(email)}`)).body;
		assert.match(otp.code, /^\d{6}$/);
		r = await call(base, 'POST', '/verify', { headers: { ...K, ...V }, body: { type: 'signup', token_hash: otp.token_hash } });
		assert.equal(r.status, 200, r.text);
		assert.ok(r.body.access_token);
		assert.equal(decodeJwt(r.body.access_token).amr[0].method, 'otp');
		r = await call(base, 'POST', '/token?grant_type=password', { headers: { ...K, ...V }, body: { email, password: 'secret123' } });
		assert.equal(r.status, 200);
	} finally {
		await config({ autoconfirm: true });
	}
});

test('error shapes with and without the API version header', T, async () => {
	const body = { email: 'nobody@example.com', password: 'wrongpass' };
	let r = await call(base, 'POST', '/token?grant_type=password', { headers: { ...K, ...V }, body });
	assert.equal(r.status, 400);
	assert.deepEqual(r.body, { code: 'invalid_credentials', message: 'Invalid login credentials' });
	assert.equal(r.headers.get('x-sb-error-code'), 'invalid_credentials');
	assert.equal(r.headers.get('x-supabase-api-version'), '2024-01-01');
	r = await call(base, 'POST', '/token?grant_type=password', { headers: K, body });
	assert.equal(r.status, 400);
	assert.deepEqual(r.body, { code: 400, error_code: 'invalid_credentials', msg: 'Invalid login credentials' });
	assert.equal(r.headers.get('x-sb-error-code'), 'invalid_credentials');
	assert.equal(r.headers.get('x-supabase-api-version'), null);
	// weak password carries weak_password.reasons
	r = await call(base, 'POST', '/signup', { headers: { ...K, ...V }, body: { email: 'weak@example.com', password: '123' } });
	assert.equal(r.status, 422);
	assert.equal(r.body.code, 'weak_password');
	assert.deepEqual(r.body.weak_password.reasons, ['length']);
	// OAuth-style errors
	r = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: K, body: {} });
	assert.equal(r.status, 400);
	assert.equal(r.body.error, 'invalid_request');
	assert.equal(r.body.error_description, 'refresh_token required');
	r = await call(base, 'POST', '/token?grant_type=password', { headers: K, raw: true, body: '{not json' });
	assert.equal(r.status, 400);
	assert.equal(r.body.error_code, 'bad_json');
});

test('refresh rotates the token, returns the same session id', T, async () => {
	const { session } = await newUser();
	const before = (await call(base, 'GET', '/_emu/state')).body.refresh_rotations;
	const r = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: { ...K, ...V }, body: { refresh_token: session.refresh_token } });
	assert.equal(r.status, 200);
	assert.notEqual(r.body.refresh_token, session.refresh_token);
	assert.equal(decodeJwt(r.body.access_token).session_id, decodeJwt(session.access_token).session_id);
	assert.equal(r.headers.get('sb-auth-session-id'), decodeJwt(session.access_token).session_id);
	const after = (await call(base, 'GET', '/_emu/state')).body.refresh_rotations;
	assert.equal(after - before, 1);
});

test('revoked parent of the active token returns the active token again', T, async () => {
	await config({ reuse_interval: 0 });
	try {
		const { session } = await newUser();
		const r1 = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: K, body: { refresh_token: session.refresh_token } });
		assert.equal(r1.status, 200);
		// the client "lost" r1: presenting the parent again yields r1's token, no new rotation
		const r2 = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: K, body: { refresh_token: session.refresh_token } });
		assert.equal(r2.status, 200);
		assert.equal(r2.body.refresh_token, r1.body.refresh_token);
		// the active one still rotates normally
		const r3 = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: K, body: { refresh_token: r1.body.refresh_token } });
		assert.equal(r3.status, 200);
		assert.notEqual(r3.body.refresh_token, r1.body.refresh_token);
	} finally {
		await config({ reuse_interval: 10 });
	}
});

test('reuse inside the interval is accepted; outside it revokes the family', T, async () => {
	await config({ reuse_interval: 10 });
	const { session } = await newUser();
	const t0 = session.refresh_token;
	const r1 = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: K, body: { refresh_token: t0 } });
	const r2 = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: K, body: { refresh_token: r1.body.refresh_token } });
	assert.equal(r2.status, 200);
	// t0 is neither active nor parent of active, but within the reuse interval
	const r3 = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: { ...K, ...V }, body: { refresh_token: t0 } });
	assert.equal(r3.status, 200, r3.text);
	// r3 made a new child of t0, which is now the active token: t0 is its parent
	// and gets the active token back; r1's token is neither, so outside the
	// interval it revokes the whole family
	const again = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: K, body: { refresh_token: t0 } });
	assert.equal(again.body.refresh_token, r3.body.refresh_token);
	await config({ reuse_interval: 0 });
	try {
		await new Promise((r) => setTimeout(r, 5));
		const r4 = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: { ...K, ...V }, body: { refresh_token: r1.body.refresh_token } });
		assert.equal(r4.status, 400);
		assert.equal(r4.body.code, 'refresh_token_already_used');
		assert.equal(r4.body.message, 'Invalid Refresh Token: Already Used');
		// every token of the family is dead now, and so is the session's access token
		const r5 = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: { ...K, ...V }, body: { refresh_token: r2.body.refresh_token } });
		assert.equal(r5.status, 400);
		assert.equal(r5.body.code, 'refresh_token_not_found');
		const u = await call(base, 'GET', '/user', { headers: { ...bearer(r2.body), ...V } });
		assert.equal(u.status, 403);
		assert.equal(u.body.code, 'session_not_found');
	} finally {
		await config({ reuse_interval: 10 });
	}
});

test('unknown refresh token', T, async () => {
	const r = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: { ...K, ...V }, body: { refresh_token: 'doesnotexist' } });
	assert.equal(r.status, 400);
	assert.equal(r.body.code, 'refresh_token_not_found');
});

test('user endpoints: GET/PUT, expired and bad tokens', T, async () => {
	const { session } = await newUser();
	let r = await call(base, 'GET', '/user', { headers: { ...bearer(session), ...V } });
	assert.equal(r.status, 200);
	assert.equal(r.body.id, session.user.id);
	r = await call(base, 'PUT', '/user', { headers: { ...bearer(session), ...V }, body: { data: { color: 'blue', n: null } } });
	assert.equal(r.status, 200);
	assert.deepEqual(r.body.user_metadata, { color: 'blue' });
	r = await call(base, 'PUT', '/user', { headers: { ...bearer(session), ...V }, body: { password: 'secret123' } });
	assert.equal(r.status, 422);
	assert.equal(r.body.code, 'same_password');
	r = await call(base, 'PUT', '/user', { headers: { ...bearer(session), ...V }, body: { password: 'newsecret456' } });
	assert.equal(r.status, 200);
	r = await call(base, 'POST', '/token?grant_type=password', { headers: K, body: { email: session.user.email, password: 'newsecret456' } });
	assert.equal(r.status, 200);
	// no bearer
	r = await call(base, 'GET', '/user', { headers: { apikey: anonKey, ...V } });
	assert.equal(r.status, 401);
	assert.equal(r.body.code, 'no_authorization');
	// the anon key as bearer has no sub
	r = await call(base, 'GET', '/user', { headers: { ...K, ...V } });
	assert.equal(r.status, 403);
	assert.equal(r.body.code, 'bad_jwt');
	// expired token
	const c = decodeJwt(session.access_token);
	const expired = signJwt({ ...c, exp: Math.floor(Date.now() / 1000) - 10 }, SECRET);
	r = await call(base, 'GET', '/user', { headers: { apikey: anonKey, Authorization: `Bearer ${expired}`, ...V } });
	assert.equal(r.status, 403);
	assert.equal(r.body.code, 'bad_jwt');
	assert.match(r.body.message, /expired/);
	// short token lifetime from the config endpoint
	await config({ token_lifetime: 60 });
	try {
		r = await call(base, 'POST', '/token?grant_type=password', { headers: K, body: { email: session.user.email, password: 'newsecret456' } });
		assert.equal(r.body.expires_in, 60);
		const cc = decodeJwt(r.body.access_token);
		assert.equal(cc.exp - cc.iat, 60);
	} finally {
		await config({ token_lifetime: 3600 });
	}
});

test('logout scopes', T, async () => {
	const { email, session: s1 } = await newUser();
	const login = async () => (await call(base, 'POST', '/token?grant_type=password', { headers: K, body: { email, password: 'secret123' } })).body;
	const s2 = await login();
	const s3 = await login();
	let r = await call(base, 'POST', '/logout?scope=bogus', { headers: { ...bearer(s1), ...V } });
	assert.equal(r.status, 400);
	assert.equal(r.body.code, 'validation_failed');
	r = await call(base, 'POST', '/logout?scope=others', { headers: bearer(s1) });
	assert.equal(r.status, 204);
	assert.equal(r.text, '');
	assert.equal((await call(base, 'GET', '/user', { headers: bearer(s1) })).status, 200);
	r = await call(base, 'GET', '/user', { headers: { ...bearer(s2), ...V } });
	assert.equal(r.status, 403);
	assert.equal(r.body.code, 'session_not_found');
	r = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: { ...K, ...V }, body: { refresh_token: s3.refresh_token } });
	assert.equal(r.status, 400);
	assert.equal(r.body.code, 'refresh_token_not_found');
	const s4 = await login();
	r = await call(base, 'POST', '/logout?scope=local', { headers: bearer(s1) });
	assert.equal(r.status, 204);
	assert.equal((await call(base, 'GET', '/user', { headers: bearer(s1) })).status, 403);
	assert.equal((await call(base, 'GET', '/user', { headers: bearer(s4) })).status, 200);
	r = await call(base, 'POST', '/logout', { headers: bearer(s4) });
	assert.equal(r.status, 204);
	assert.equal((await call(base, 'GET', '/user', { headers: bearer(s4) })).status, 403);
});

test('control revoke kills sessions', T, async () => {
	const { session } = await newUser();
	const sid = decodeJwt(session.access_token).session_id;
	let r = await call(base, 'POST', '/_emu/revoke', { body: { session_id: sid } });
	assert.equal(r.body.revoked_sessions, 1);
	r = await call(base, 'GET', '/user', { headers: { ...bearer(session), ...V } });
	assert.equal(r.body.code, 'session_not_found');
});

test('OTP sign-in and GET /verify redirect', T, async () => {
	const email = `otp-${Date.now()}@example.com`;
	let r = await call(base, 'POST', '/otp', { headers: { ...K, ...V }, body: { email, create_user: false } });
	assert.equal(r.status, 422);
	assert.equal(r.body.code, 'otp_disabled');
	r = await call(base, 'POST', '/otp', { headers: { ...K, ...V }, body: { email, data: {}, create_user: true } });
	assert.equal(r.status, 200);
	assert.deepEqual(r.body, {});
	let otp = (await call(base, 'GET', `/_emu/otp?email=${encodeURIComponent(email)}`)).body;
	r = await call(base, 'POST', '/verify', { headers: { ...K, ...V }, body: { email, token: '000000' === otp.code ? '111111' : '000000', type: 'email' } });
	assert.equal(r.status, 403);
	assert.equal(r.body.code, 'otp_expired');
	r = await call(base, 'POST', '/verify', { headers: { ...K, ...V }, body: { email, token: otp.code, type: 'email' } });
	assert.equal(r.status, 200);
	assert.ok(r.body.refresh_token);
	// single use
	r = await call(base, 'POST', '/verify', { headers: { ...K, ...V }, body: { email, token: otp.code, type: 'email' } });
	assert.equal(r.status, 403);
	// magic link via GET /verify: no apikey needed, 303 with the session in the fragment
	await call(base, 'POST', '/otp', { headers: K, body: { email } });
	otp = (await call(base, 'GET', `/_emu/otp?email=${encodeURIComponent(email)}`)).body;
	r = await call(base, 'GET', `/verify?token=${otp.token_hash}&type=magiclink&redirect_to=${encodeURIComponent('http://app.test/cb')}`);
	assert.equal(r.status, 303);
	const loc = new URL(r.headers.get('location'));
	assert.equal(loc.origin + loc.pathname, 'http://app.test/cb');
	const frag = new URLSearchParams(loc.hash.slice(1));
	assert.ok(frag.get('access_token'));
	assert.ok(frag.get('refresh_token'));
	assert.equal(frag.get('token_type'), 'bearer');
	assert.equal(frag.get('type'), 'magiclink');
	r = await call(base, 'GET', `/verify?token=${otp.token_hash}&type=magiclink&redirect_to=${encodeURIComponent('http://app.test/cb')}`);
	assert.equal(r.status, 303);
	assert.match(r.headers.get('location'), /#error=access_denied&error_code=otp_expired/);
});

test('authorize redirects to the provider or answers JSON with skip_http_redirect', T, async () => {
	let r = await call(base, 'GET', '/authorize?provider=github&redirect_to=http%3A%2F%2Fapp.test');
	assert.equal(r.status, 302);
	assert.match(r.headers.get('location'), /^https:\/\/github\./);
	// follow the provider's way back through /callback
	const state = new URL(r.headers.get('location')).searchParams.get('state');
	const cb = await call(base, 'GET', `/callback?state=${state}&code=octocat%40example.com`);
	assert.equal(cb.status, 302);
	const frag = new URLSearchParams(new URL(cb.headers.get('location')).hash.slice(1));
	assert.equal(new URL(cb.headers.get('location')).origin, 'http://app.test');
	assert.equal(decodeJwt(frag.get('access_token')).email, 'octocat@example.com');
	assert.ok(frag.get('refresh_token'));
	r = await call(base, 'GET', '/authorize?provider=github&skip_http_redirect=true');
	assert.equal(r.status, 200);
	assert.match(r.body.url, /^https:\/\/github\./);
	r = await call(base, 'GET', '/authorize?provider=nope', { headers: V });
	assert.equal(r.status, 400);
	assert.equal(r.body.code, 'validation_failed');
});

test('MFA TOTP enroll, challenge, verify upgrades to aal2; unenroll', T, async () => {
	const { session } = await newUser();
	let r = await call(base, 'POST', '/factors', { headers: { ...bearer(session), ...V }, body: { factor_type: 'totp', friendly_name: 'phone app' } });
	assert.equal(r.status, 200, r.text);
	const f = r.body;
	assert.equal(f.type, 'totp');
	assert.match(f.totp.secret, /^[A-Z2-7]{32}$/);
	assert.match(f.totp.uri, /^otpauth:\/\/totp\/.+secret=/);
	assert.ok(f.totp.qr_code);
	r = await call(base, 'POST', '/factors', { headers: { ...bearer(session), ...V }, body: { factor_type: 'totp', friendly_name: 'phone app' } });
	assert.equal(r.status, 422);
	assert.equal(r.body.code, 'mfa_factor_name_conflict');
	r = await call(base, 'GET', '/user', { headers: bearer(session) });
	assert.equal(r.body.factors[0].status, 'unverified');
	r = await call(base, 'POST', `/factors/${f.id}/challenge`, { headers: { ...bearer(session), ...V }, body: {} });
	assert.equal(r.status, 200);
	const ch = r.body;
	assert.equal(ch.type, 'totp');
	assert.ok(ch.expires_at > Date.now() / 1000);
	// a wrong code (the one from 10 minutes ago is outside the ±1 step window)
	const wrong = totpCode(f.totp.secret, Date.now() - 600000);
	const right = totpCode(f.totp.secret);
	if (wrong !== right) {
		r = await call(base, 'POST', `/factors/${f.id}/verify`, { headers: { ...bearer(session), ...V }, body: { challenge_id: ch.id, code: wrong } });
		assert.equal(r.status, 422);
		assert.equal(r.body.code, 'mfa_verification_failed');
	}
	r = await call(base, 'POST', `/factors/${f.id}/verify`, { headers: { ...bearer(session), ...V }, body: { challenge_id: ch.id, code: right } });
	assert.equal(r.status, 200, r.text);
	const c = decodeJwt(r.body.access_token);
	assert.equal(c.aal, 'aal2');
	assert.equal(c.amr[0].method, 'totp');
	assert.equal(c.session_id, decodeJwt(session.access_token).session_id);
	const s2 = r.body;
	// challenge cannot be reused
	r = await call(base, 'POST', `/factors/${f.id}/verify`, { headers: { ...bearer(s2), ...V }, body: { challenge_id: ch.id, code: right } });
	assert.equal(r.status, 422);
	// aal is kept across refresh
	r = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: K, body: { refresh_token: s2.refresh_token } });
	assert.equal(decodeJwt(r.body.access_token).aal, 'aal2');
	// an aal1 session cannot unenroll a verified factor
	const s1 = (await call(base, 'POST', '/token?grant_type=password', { headers: K, body: { email: session.user.email, password: 'secret123' } })).body;
	assert.equal(decodeJwt(s1.access_token).aal, 'aal1');
	r = await call(base, 'DELETE', `/factors/${f.id}`, { headers: { ...bearer(s1), ...V } });
	assert.equal(r.status, 422);
	assert.equal(r.body.code, 'insufficient_aal');
	r = await call(base, 'DELETE', `/factors/${f.id}`, { headers: { ...bearer(s2), ...V } });
	assert.equal(r.status, 200);
	assert.deepEqual(r.body, { id: f.id });
	r = await call(base, 'POST', `/factors/${f.id}/challenge`, { headers: { ...bearer(s2), ...V } });
	assert.equal(r.status, 404);
	assert.equal(r.body.code, 'mfa_factor_not_found');
});

test('faults: down, status, ratelimit with count and path', T, async () => {
	await call(base, 'DELETE', '/_emu/requests');
	let r = await call(base, 'POST', '/_emu/fault', { body: { mode: 'status', status: 503, path: '/token', count: 1 } });
	assert.equal(r.status, 200);
	r = await call(base, 'POST', '/token?grant_type=password', { headers: K, body: {} });
	assert.equal(r.status, 503);
	assert.ok(r.body);
	r = await call(base, 'POST', '/token?grant_type=password', { headers: K, body: { email: 'x@example.com', password: 'whatever1' } });
	assert.equal(r.status, 400); // the fault was used up
	await call(base, 'POST', '/_emu/fault', { body: { mode: 'ratelimit', retry_after: 7, count: 1 } });
	r = await call(base, 'GET', '/settings', { headers: { ...K, ...V } });
	assert.equal(r.status, 429);
	assert.equal(r.headers.get('retry-after'), '7');
	assert.equal(r.body.code, 'over_request_rate_limit');
	await call(base, 'POST', '/_emu/fault', { body: { mode: 'down', path: '/auth/v1/settings' } });
	await assert.rejects(fetch(`${base}/auth/v1/settings`, { headers: K }));
	assert.equal((await call(base, 'GET', '/settings', { headers: K })).status, 200);
	await call(base, 'POST', '/_emu/fault', { body: { mode: 'delay', ms: 50, count: 1 } });
	assert.equal((await call(base, 'GET', '/settings', { headers: K })).status, 200);
	await call(base, 'POST', '/_emu/fault', { body: { mode: 'none' } });
	assert.equal((await call(base, 'GET', '/auth/v1/settings', { headers: K })).status, 200);
	const log = (await call(base, 'GET', '/_emu/requests')).body;
	const tok = log.filter((e) => e.service_path === '/token');
	assert.equal(tok.length, 2);
	assert.equal(tok[0].query.grant_type, 'password');
	assert.equal(tok[1].headers.apikey, anonKey);
	assert.equal(JSON.parse(tok[1].body).email, 'x@example.com');
	assert.equal(tok[0].fault, 'status');
});

test('faults: status with error_code answers 409 conflict in Auth\'s shape; the token is untouched', T, async () => {
	const { session } = await newUser();
	await call(base, 'DELETE', '/_emu/requests');
	const st0 = (await call(base, 'GET', '/_emu/state')).body;
	let r = await call(base, 'POST', '/_emu/fault', { body: { mode: 'status', status: 409, error_code: 'conflict', path: '/token', count: 2 } });
	assert.equal(r.status, 200);
	assert.equal(r.body.fault.error_code, 'conflict');
	// versioned: {code, message}
	r = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: { ...K, ...V }, body: { refresh_token: session.refresh_token } });
	assert.equal(r.status, 409);
	assert.equal(r.body.code, 'conflict');
	assert.equal(typeof r.body.message, 'string');
	assert.equal(r.headers.get('x-sb-error-code'), 'conflict');
	assert.equal(r.headers.get('x-supabase-api-version'), '2024-01-01');
	// unversioned: {code:<status>, error_code, msg}, and a custom message
	await call(base, 'POST', '/_emu/fault', { body: { mode: 'status', status: 409, error_code: 'conflict', message: 'busy', path: '/token', count: 1 } });
	r = await call(base, 'POST', '/auth/v1/token?grant_type=refresh_token', { headers: K, body: { refresh_token: session.refresh_token } });
	assert.equal(r.status, 409);
	assert.equal(r.body.code, 409);
	assert.equal(r.body.error_code, 'conflict');
	assert.equal(r.body.msg, 'busy');
	// the new fault replaced the first (same prefix) and is used up: the same refresh token still works
	assert.deepEqual((await call(base, 'GET', '/_emu/fault')).body, []);
	r = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: { ...K, ...V }, body: { refresh_token: session.refresh_token } });
	assert.equal(r.status, 200);
	assert.notEqual(r.body.refresh_token, session.refresh_token);
	const st1 = (await call(base, 'GET', '/_emu/state')).body;
	// faulted calls never reach the grant: one refresh request, one rotation
	assert.equal(st1.refresh_requests - st0.refresh_requests, 1);
	assert.equal(st1.refresh_rotations - st0.refresh_rotations, 1);
	assert.equal(st1.refresh_failures - st0.refresh_failures, 0);
	const log = (await call(base, 'GET', '/_emu/requests')).body.filter((e) => e.service_path === '/token');
	assert.deepEqual(log.map((e) => [e.status, e.fault ?? null]), [[409, 'status'], [409, 'status'], [200, null]]);
	// without error_code: the generic body, as before
	await call(base, 'POST', '/_emu/fault', { body: { mode: 'status', status: 409, path: '/token', count: 1 } });
	r = await call(base, 'POST', '/token?grant_type=refresh_token', { headers: { ...K, ...V }, body: { refresh_token: r.body.refresh_token } });
	assert.equal(r.status, 409);
	assert.equal(r.body.error_code, 'unexpected_failure');
});

test('CLI: binds, writes the port file, exits on SIGTERM', T, async () => {
	const dir = tmpDir('auth-emu-');
	const portFile = path.join(dir, 'port');
	const script = fileURLToPath(new URL('../auth.mjs', import.meta.url));
	const child = spawn(process.execPath, [script, '--host', '127.0.0.1', '--port', '0', '--port-file', portFile,
		'--jwt-secret-file', secretFile(dir), '--token-lifetime', '120', '--reuse-interval', '3', '--autoconfirm', 'false'], { stdio: 'ignore' });
	try {
		for (let i = 0; i < 100 && !fs.existsSync(portFile); i++) await new Promise((r) => setTimeout(r, 50));
		const port = Number(fs.readFileSync(portFile, 'utf8').trim());
		assert.ok(port > 0);
		const r = await call(`http://127.0.0.1:${port}`, 'GET', '/_emu/config');
		assert.equal(r.body.token_lifetime, 120);
		assert.equal(r.body.reuse_interval, 3);
		assert.equal(r.body.autoconfirm, false);
	} finally {
		const exited = new Promise((r) => child.on('exit', (code) => r(code)));
		child.kill('SIGTERM');
		assert.equal(await exited, 0);
		fs.rmSync(dir, { recursive: true, force: true });
	}
});
