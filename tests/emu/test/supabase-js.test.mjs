// The real supabase-js client against both emulators. Skipped when the
// package is not installed (the emulators themselves need no npm packages).
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { startAuth } from '../auth.mjs';
import { startStorage } from '../storage.mjs';
import { totp } from '../lib/totp.mjs';
import { SECRET, anonKey, serviceKey, tmpDir, TEST_TIMEOUT } from '../lib/testutil.mjs';

const require = createRequire(new URL('../../../package.json', import.meta.url));
let sbjs = null, ws = null;
try {
	sbjs = require('@supabase/supabase-js');
	ws = require('ws'); // Node 20 has no WebSocket; supabase-js needs a transport
} catch { sbjs = null; }

test('supabase-js drives both emulators', { timeout: TEST_TIMEOUT, skip: !sbjs && '@supabase/supabase-js or ws not installed' }, async () => {
	const { createClient } = sbjs;
	const dir = tmpDir('sbjs-');
	const auth = await startAuth({ secret: SECRET });
	const storage = await startStorage({ secret: SECRET, dataDir: dir });
	const opts = { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: ws } };
	try {
		const sb = createClient(auth.url, anonKey, opts);
		let r = await sb.auth.signUp({ email: 'js@example.com', password: 'secret123' });
		assert.ifError(r.error);
		assert.ok(r.data.session);
		r = await sb.auth.signInWithPassword({ email: 'js@example.com', password: 'wrong-pass' });
		assert.equal(r.error.status, 400);
		assert.equal(r.error.code, 'invalid_credentials');
		r = await sb.auth.signInWithPassword({ email: 'js@example.com', password: 'secret123' });
		assert.ifError(r.error);
		r = await sb.auth.updateUser({ data: { a: 1 } });
		assert.deepEqual(r.data.user.user_metadata, { a: 1 });
		r = await sb.auth.refreshSession();
		assert.ifError(r.error);
		const f = await sb.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'x' });
		assert.ifError(f.error);
		r = await sb.auth.mfa.challengeAndVerify({ factorId: f.data.id, code: totp(f.data.totp.secret) });
		assert.ifError(r.error);
		assert.equal((await sb.auth.mfa.getAuthenticatorAssuranceLevel()).data.currentLevel, 'aal2');
		r = await sb.auth.signInWithOtp({ email: 'otp@example.com' });
		assert.ifError(r.error);
		const otp = await (await fetch(`${auth.url}/_emu/otp?email=otp@example.com`)).json();
		const sb2 = createClient(auth.url, anonKey, opts);
		r = await sb2.auth.verifyOtp({ email: 'otp@example.com', token: otp.code, type: 'email' });
		assert.ok(r.data.session);

		const token = (await sb.auth.getSession()).data.session.access_token;
		const user = createClient(storage.url, anonKey, { ...opts, global: { headers: { Authorization: `Bearer ${token}` } } });
		const svc = createClient(storage.url, serviceKey, opts);
		assert.ifError((await svc.storage.createBucket('avatars', { public: false })).error);
		const b = user.storage.from('avatars');
		assert.ifError((await b.upload('folder/a.txt', Buffer.from('hello'), { contentType: 'text/plain' })).error);
		r = await b.upload('folder/a.txt', Buffer.from('hello'));
		assert.equal(r.error.status, 400);
		assert.equal(r.error.statusCode, '409');
		assert.ifError((await b.upload('folder/b.bin', new Blob(['blobdata'], { type: 'application/x-test' }), { cacheControl: '60' })).error);
		r = await b.download('folder/b.bin');
		assert.equal(await r.data.text(), 'blobdata');
		r = await b.list('folder');
		assert.deepEqual(r.data.map((x) => x.name), ['a.txt', 'b.bin']);
		r = await b.createSignedUrl('folder/a.txt', 60);
		const got = await fetch(r.data.signedUrl);
		assert.equal(got.status, 200);
		assert.equal(await got.text(), 'hello');
		r = await b.createSignedUploadUrl('folder/up.txt');
		assert.ifError((await b.uploadToSignedUrl('folder/up.txt', r.data.token, Buffer.from('up'))).error);
		assert.equal((await b.exists('folder/up.txt')).data, true);
		assert.ifError((await b.move('folder/up.txt', 'folder/moved.txt')).error);
		assert.ifError((await b.copy('folder/moved.txt', 'folder/copied.txt')).error);
		assert.equal((await b.remove(['folder/moved.txt', 'folder/copied.txt'])).data.length, 2);
		r = await b.download('folder/missing');
		assert.equal(r.error.status, 400);
		assert.equal(r.error.statusCode, '404');
		assert.ifError((await svc.storage.emptyBucket('avatars')).error);
		assert.ifError((await svc.storage.deleteBucket('avatars')).error);
		assert.ifError((await sb.auth.signOut()).error);
	} finally {
		await auth.close();
		await storage.close();
		fs.rmSync(dir, { recursive: true, force: true });
	}
});
