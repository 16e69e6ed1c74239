// Contract tests for the Storage emulator's TUS 1.0.0 resumable uploads
// (wire-contract §4.5): create, HEAD, PATCH, interruption, termination.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { startStorage } from '../storage.mjs';
import { SECRET, tmpDir, serviceKey, anonKey, call, TEST_TIMEOUT } from '../lib/testutil.mjs';
import { signJwt } from '../lib/common.mjs';

const T = { timeout: TEST_TIMEOUT };
const exp = Math.floor(Date.now() / 1000) + 3600;
const alice = signJwt({ sub: '11111111-1111-4111-8111-111111111111', role: 'authenticated', aud: 'authenticated', exp }, SECRET);
const bob = signJwt({ sub: '22222222-2222-4222-8222-222222222222', role: 'authenticated', aud: 'authenticated', exp }, SECRET);
const as = (t) => ({ apikey: anonKey, Authorization: `Bearer ${t}` });
const SVC = as(serviceKey), ALICE = as(alice), BOB = as(bob);
const TUS = { 'Tus-Resumable': '1.0.0' };
const b64 = (s) => Buffer.from(s).toString('base64');
const meta = (o) => Object.entries(o).map(([k, v]) => `${k} ${b64(v)}`).join(',');

let emu, base, dir;
test.before(async () => {
	dir = tmpDir('storage-tus-');
	emu = await startStorage({ secret: SECRET, port: 0, dataDir: dir });
	base = emu.url;
	for (const [id, pub] of [['priv', false], ['pub', true]]) {
		const r = await call(base, 'POST', '/bucket', { headers: SVC, body: { id, name: id, public: pub } });
		assert.equal(r.status, 200);
	}
}, T);
test.after(async () => {
	await emu.close();
	fs.rmSync(dir, { recursive: true, force: true });
}, T);

function bytes(n, seed = 0) {
	const b = Buffer.alloc(n);
	for (let i = 0; i < n; i++) b[i] = (i + seed) % 251;
	return b;
}

async function create(headers, name, length, extra = {}, p = '/upload/resumable') {
	return call(base, 'POST', p, {
		headers: {
			...headers, ...TUS, 'Upload-Length': String(length),
			'Upload-Metadata': meta({ bucketName: 'priv', objectName: name, contentType: 'application/x-test', cacheControl: '60' }),
			...extra,
		},
	});
}
const idOf = (loc) => new URL(loc).pathname;
async function patch(headers, p, offset, body) {
	return call(base, 'PATCH', p, {
		headers: { ...headers, ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) },
		raw: true, body,
	});
}
const head = (headers, p) => call(base, 'HEAD', p, { headers: { ...headers, ...TUS } });

test('OPTIONS advertises the version and extensions', T, async () => {
	const r = await call(base, 'OPTIONS', '/storage/v1/upload/resumable');
	assert.equal(r.status, 204);
	assert.equal(r.headers.get('tus-resumable'), '1.0.0');
	assert.equal(r.headers.get('tus-version'), '1.0.0');
	assert.match(r.headers.get('tus-extension'), /\bcreation\b/);
	assert.match(r.headers.get('tus-extension'), /\btermination\b/);
	assert.ok(Number(r.headers.get('tus-max-size')) > 0);
});

test('create, HEAD, PATCH in chunks, the object appears', T, async () => {
	const data = bytes(300_000, 7);
	let r = await create(ALICE, 'tus/a.bin', data.length);
	assert.equal(r.status, 201, r.text);
	assert.equal(r.headers.get('tus-resumable'), '1.0.0');
	const loc = r.headers.get('location');
	assert.match(loc, new RegExp(`^http://127\\.0\\.0\\.1:${emu.port}/upload/resumable/[A-Za-z0-9_-]+$`));
	assert.ok(r.headers.get('upload-expires'));
	const p = idOf(loc);
	r = await head(ALICE, p);
	assert.equal(r.status, 200);
	assert.equal(r.headers.get('upload-offset'), '0');
	assert.equal(r.headers.get('upload-length'), String(data.length));
	assert.equal(r.headers.get('cache-control'), 'no-store');
	// not there yet
	r = await call(base, 'GET', '/object/priv/tus/a.bin', { headers: ALICE });
	assert.equal(r.status, 400);
	let off = 0;
	for (const n of [100_000, 150_000, 50_000]) {
		r = await patch(ALICE, p, off, data.subarray(off, off + n));
		assert.equal(r.status, 204, r.text);
		off += n;
		assert.equal(r.headers.get('upload-offset'), String(off));
	}
	r = await fetch(`${base}/object/priv/tus/a.bin`, { headers: ALICE });
	assert.equal(r.status, 200);
	assert.equal(r.headers.get('content-type'), 'application/x-test');
	assert.equal(r.headers.get('cache-control'), 'max-age=60');
	const got = Buffer.from(await r.arrayBuffer());
	assert.ok(got.equals(data));
	assert.equal(r.headers.get('etag'), `"${crypto.createHash('md5').update(data).digest('hex')}"`);
	// the finished upload URL is gone
	r = await head(ALICE, p);
	assert.equal(r.status, 404);
	// the owner is the creator: bob cannot read it
	r = await call(base, 'GET', '/object/priv/tus/a.bin', { headers: BOB });
	assert.equal(r.status, 400);
	assert.equal(r.body.statusCode, '404');
});

test('Location follows X-Forwarded-* and the /storage/v1 prefix', T, async () => {
	let r = await create(SVC, 'tus/fwd1', 1, {}, '/storage/v1/upload/resumable');
	assert.equal(r.status, 201);
	assert.match(r.headers.get('location'), new RegExp(`^http://127\\.0\\.0\\.1:${emu.port}/storage/v1/upload/resumable/[^/]+$`));
	r = await create(SVC, 'tus/fwd2', 1, {
		'X-Forwarded-Host': 'gate.example', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Port': '8443',
		'X-Forwarded-Prefix': '/storage/v1',
	});
	assert.equal(r.status, 201);
	assert.match(r.headers.get('location'), /^https:\/\/gate\.example:8443\/storage\/v1\/upload\/resumable\/[^/]+$/);
	// the upload works under the prefixed path too
	r = await create(SVC, 'tus/fwd3', 3, {}, '/storage/v1/upload/resumable');
	const p = idOf(r.headers.get('location'));
	r = await patch(SVC, p, 0, 'abc');
	assert.equal(r.status, 204);
	r = await call(base, 'GET', '/object/priv/tus/fwd3', { headers: SVC });
	assert.equal(r.text, 'abc');
});

test('protocol errors: version, length, offset conflict, content type, size, other users', T, async () => {
	let r = await call(base, 'POST', '/upload/resumable', { headers: { ...ALICE, 'Upload-Length': '1' } });
	assert.equal(r.status, 412);
	assert.equal(r.headers.get('tus-version'), '1.0.0');
	r = await create(ALICE, 'tus/e', 10, { 'Upload-Length': '' });
	assert.equal(r.status, 400);
	r = await call(base, 'POST', '/upload/resumable', { headers: { ...ALICE, ...TUS, 'Upload-Length': '1', 'Upload-Metadata': meta({ objectName: 'x' }) } });
	assert.equal(r.status, 400);
	r = await call(base, 'POST', '/upload/resumable', { headers: { ...ALICE, ...TUS, 'Upload-Length': '1', 'Upload-Metadata': meta({ bucketName: 'nope', objectName: 'x' }) } });
	assert.equal(r.status, 404);
	assert.equal(r.body.code, 'NoSuchBucket');
	r = await create({}, 'tus/e', 10);
	assert.equal(r.status, 403);
	assert.equal(r.body.code, 'AccessDenied');
	r = await create(ALICE, 'tus/e', 100 * 1024 * 1024);
	assert.equal(r.status, 413);
	r = await create(ALICE, 'tus/e', 10);
	assert.equal(r.status, 201);
	const p = idOf(r.headers.get('location'));
	r = await patch(ALICE, p, 3, 'abc');
	assert.equal(r.status, 409);
	r = await call(base, 'PATCH', p, { headers: { ...ALICE, ...TUS, 'Content-Type': 'text/plain', 'Upload-Offset': '0' }, raw: true, body: 'abc' });
	assert.equal(r.status, 415);
	r = await patch(ALICE, p, 0, 'x'.repeat(11));
	assert.equal(r.status, 413);
	r = await head(BOB, p);
	assert.equal(r.status, 404);
	r = await head(ALICE, `${p}x`);
	assert.equal(r.status, 404);
	r = await head(ALICE, p);
	assert.equal(r.headers.get('upload-offset'), '0');
});

test('duplicate without x-upsert, overwrite with it', T, async () => {
	let r = await create(ALICE, 'tus/dup', 2);
	let p = idOf(r.headers.get('location'));
	assert.equal((await patch(ALICE, p, 0, 'v1')).status, 204);
	r = await create(ALICE, 'tus/dup', 2);
	assert.equal(r.status, 409);
	assert.equal(r.body.error, 'Duplicate');
	r = await create(ALICE, 'tus/dup', 2, { 'x-upsert': 'true' });
	assert.equal(r.status, 201);
	p = idOf(r.headers.get('location'));
	assert.equal((await patch(ALICE, p, 0, 'v2')).status, 204);
	r = await call(base, 'GET', '/object/priv/tus/dup', { headers: ALICE });
	assert.equal(r.text, 'v2');
	// bob may not overwrite alice's object even with upsert
	r = await create(BOB, 'tus/dup', 2, { 'x-upsert': 'true' });
	assert.equal(r.status, 403);
});

test('creation-with-upload and termination', T, async () => {
	let r = await fetch(`${base}/upload/resumable`, {
		method: 'POST',
		headers: {
			...SVC, ...TUS, 'Upload-Length': '6', 'Content-Type': 'application/offset+octet-stream',
			'Upload-Metadata': meta({ bucketName: 'priv', objectName: 'tus/cwu2' }),
		},
		body: 'abc',
	});
	assert.equal(r.status, 201);
	assert.equal(r.headers.get('upload-offset'), '3');
	const p = idOf(r.headers.get('location'));
	r = await call(base, 'DELETE', p, { headers: { ...SVC, ...TUS } });
	assert.equal(r.status, 204);
	r = await head(SVC, p);
	assert.equal(r.status, 404);
	r = await call(base, 'GET', '/object/priv/tus/cwu2', { headers: SVC });
	assert.equal(r.body.statusCode, '404');
});

// PATCH over a raw socket, destroyed after `sent` bytes of a `total`-byte chunk
function interruptedPatch(p, offset, chunk, sent) {
	return new Promise((resolve, reject) => {
		const req = http.request(`${base}${p}`, {
			method: 'PATCH',
			headers: {
				...ALICE, ...TUS, 'Content-Type': 'application/offset+octet-stream',
				'Upload-Offset': String(offset), 'Content-Length': String(chunk.length),
			},
		});
		req.on('error', () => resolve());
		req.on('response', () => reject(new Error('answered an unfinished PATCH')));
		req.write(chunk.subarray(0, sent), () => setTimeout(() => { req.destroy(); resolve(); }, 100));
	});
}

test('an interrupted PATCH keeps its bytes; HEAD gives the offset to resume from', T, async () => {
	const data = bytes(3 * 1024 * 1024, 3);
	let r = await create(ALICE, 'tus/resume', data.length);
	const p = idOf(r.headers.get('location'));
	const chunk = 1024 * 1024;
	assert.equal((await patch(ALICE, p, 0, data.subarray(0, chunk))).status, 204);
	await interruptedPatch(p, chunk, data.subarray(chunk, 2 * chunk), 300_000);
	// the writer lets go once the abort is seen; poll (bounded) for a stable offset
	let off = -1;
	for (let i = 0; i < 100; i++) {
		r = await head(ALICE, p);
		off = Number(r.headers.get('upload-offset'));
		if (off > chunk) break;
		await new Promise((res) => setTimeout(res, 20));
	}
	assert.ok(off > chunk && off <= chunk + 300_000, `offset ${off}`);
	// resume from there to the end
	for (let i = 0; i < 100 && off < data.length; i++) {
		r = await patch(ALICE, p, off, data.subarray(off, Math.min(off + chunk, data.length)));
		if (r.status === 409) { // the aborted writer has not let go yet
			await new Promise((res) => setTimeout(res, 20));
			off = Number((await head(ALICE, p)).headers.get('upload-offset'));
			continue;
		}
		assert.equal(r.status, 204, r.text);
		off = Number(r.headers.get('upload-offset'));
	}
	assert.equal(off, data.length);
	r = await fetch(`${base}/object/priv/tus/resume`, { headers: ALICE });
	const got = Buffer.from(await r.arrayBuffer());
	assert.ok(got.equals(data), 'resumed object differs');
	const log = await (await fetch(`${base}/_emu/requests`)).json();
	assert.ok(log.some((e) => e.method === 'PATCH' && e.body_bytes > 0 && e.body_bytes < chunk));
});

test('signed variant: /upload/resumable/sign with x-signature', T, async () => {
	let r = await call(base, 'POST', '/object/upload/sign/priv/tus/signed.txt', { headers: ALICE, body: {} });
	assert.equal(r.status, 200);
	const token = r.body.token;
	r = await call(base, 'POST', '/storage/v1/upload/resumable/sign', {
		headers: { ...TUS, 'x-signature': token, 'Upload-Length': '5', 'Upload-Metadata': meta({ bucketName: 'priv', objectName: 'tus/signed.txt', contentType: 'text/plain' }) },
	});
	assert.equal(r.status, 201, r.text);
	assert.match(r.headers.get('location'), /\/storage\/v1\/upload\/resumable\/sign\/[^/]+$/);
	const p = idOf(r.headers.get('location'));
	r = await call(base, 'PATCH', p, {
		headers: { ...TUS, 'x-signature': token, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
		raw: true, body: 'hello',
	});
	assert.equal(r.status, 204);
	r = await call(base, 'GET', '/object/priv/tus/signed.txt', { headers: ALICE });
	assert.equal(r.text, 'hello');
	// a token for another path does not fit
	r = await call(base, 'POST', '/upload/resumable/sign', {
		headers: { ...TUS, 'x-signature': token, 'Upload-Length': '5', 'Upload-Metadata': meta({ bucketName: 'priv', objectName: 'tus/other' }) },
	});
	assert.equal(r.status, 400);
	assert.equal(r.body.code, 'InvalidSignature');
});
