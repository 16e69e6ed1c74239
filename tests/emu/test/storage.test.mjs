// Contract tests for the Storage emulator (tests/emu/storage.mjs).
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStorage } from '../storage.mjs';
import { SECRET, tmpDir, secretFile, anonKey, serviceKey, decodeJwt, call, TEST_TIMEOUT } from '../lib/testutil.mjs';
import { signJwt } from '../lib/common.mjs';

// every test fails within TEST_TIMEOUT instead of hanging (see lib/testutil.mjs)
const T = { timeout: TEST_TIMEOUT };

const exp = Math.floor(Date.now() / 1000) + 3600;
const alice = signJwt({ sub: '11111111-1111-4111-8111-111111111111', role: 'authenticated', aud: 'authenticated', exp }, SECRET);
const bob = signJwt({ sub: '22222222-2222-4222-8222-222222222222', role: 'authenticated', aud: 'authenticated', exp }, SECRET);
const as = (t) => ({ apikey: anonKey, Authorization: `Bearer ${t}` });
const SVC = as(serviceKey), ANON = as(anonKey), ALICE = as(alice), BOB = as(bob);

let emu, base, dir;
test.before(async () => {
	dir = tmpDir('storage-emu-');
	emu = await startStorage({ secret: SECRET, port: 0, dataDir: dir });
	base = emu.url;
	let r = await call(base, 'POST', '/bucket', { headers: SVC, body: { id: 'priv', name: 'priv', public: false } });
	assert.equal(r.status, 200);
	assert.deepEqual(r.body, { name: 'priv' });
	r = await call(base, 'POST', '/storage/v1/bucket', { headers: ALICE, body: { id: 'pub', name: 'pub', public: true } });
	assert.equal(r.status, 200);
}, T);
test.after(async () => {
	await emu.close();
	fs.rmSync(dir, { recursive: true, force: true });
}, T);

async function put(headers, bucket, name, body, extra = {}) {
	return call(base, 'POST', `/object/${bucket}/${name}`, {
		headers: { ...headers, 'content-type': 'text/plain', 'cache-control': 'max-age=3600', ...extra }, raw: true, body,
	});
}

test('bucket CRUD and error shape', T, async () => {
	let r = await call(base, 'POST', '/bucket', { headers: SVC, body: { id: 'tmp', name: 'tmp', public: false, file_size_limit: 10, allowed_mime_types: ['image/*'] } });
	assert.equal(r.status, 200);
	r = await call(base, 'POST', '/bucket', { headers: SVC, body: { name: 'tmp' } });
	assert.equal(r.status, 400);
	assert.equal(r.body.statusCode, '409');
	assert.equal(r.body.code, 'BucketAlreadyExists');
	r = await call(base, 'GET', '/bucket/tmp', { headers: SVC });
	assert.equal(r.body.file_size_limit, 10);
	assert.deepEqual(r.body.allowed_mime_types, ['image/*']);
	r = await call(base, 'GET', '/bucket', { headers: SVC });
	assert.ok(r.body.some((b) => b.id === 'tmp'));
	r = await call(base, 'PUT', '/bucket/tmp', { headers: SVC, body: { public: true } });
	assert.deepEqual(r.body, { message: 'Successfully updated' });
	assert.equal((await call(base, 'GET', '/bucket/tmp', { headers: SVC })).body.public, true);
	// limits
	r = await put(SVC, 'tmp', 'a.txt', 'x');
	assert.equal(r.status, 400);
	assert.equal(r.body.statusCode, '415');
	assert.equal(r.body.code, 'InvalidMimeType');
	r = await put(SVC, 'tmp', 'big.png', 'x'.repeat(11), { 'content-type': 'image/png' });
	assert.equal(r.status, 400);
	assert.equal(r.body.statusCode, '413');
	assert.equal(r.body.code, 'EntityTooLarge');
	r = await put(SVC, 'tmp', 'ok.png', 'x'.repeat(10), { 'content-type': 'image/png' });
	assert.equal(r.status, 200);
	r = await call(base, 'DELETE', '/bucket/tmp', { headers: SVC, body: {} });
	assert.equal(r.status, 400);
	assert.equal(r.body.statusCode, '409');
	r = await call(base, 'POST', '/bucket/tmp/empty', { headers: SVC, body: {} });
	assert.equal(r.status, 200);
	r = await call(base, 'DELETE', '/bucket/tmp', { headers: SVC, body: {} });
	assert.deepEqual(r.body, { message: 'Successfully deleted' });
	r = await call(base, 'GET', '/bucket/tmp', { headers: SVC });
	assert.equal(r.status, 400);
	assert.deepEqual(r.body, { statusCode: '404', code: 'NoSuchBucket', error: 'Bucket not found', message: 'Bucket not found' });
	// anon cannot create buckets
	r = await call(base, 'POST', '/bucket', { headers: ANON, body: { name: 'nope' } });
	assert.equal(r.status, 400);
	assert.equal(r.body.statusCode, '403');
});

test('JWT problems are HTTP 400 with statusCode 403', T, async () => {
	const expired = signJwt({ sub: 'x', role: 'authenticated', exp: 1000 }, SECRET);
	let r = await call(base, 'GET', '/bucket', { headers: { apikey: anonKey, Authorization: `Bearer ${expired}` } });
	assert.equal(r.status, 400);
	assert.equal(r.body.statusCode, '403');
	assert.equal(r.body.code, 'AccessDenied');
	assert.match(r.body.message, /exp/);
	r = await call(base, 'GET', '/bucket', { headers: { Authorization: `Bearer ${signJwt({ role: 'anon' }, 'wrong')}` } });
	assert.equal(r.status, 400);
	assert.equal(r.body.statusCode, '403');
});

test('upload raw, download with headers, upsert and duplicate', T, async () => {
	let r = await put(ALICE, 'priv', 'folder/a.txt', 'hello world', { 'x-metadata': Buffer.from('{"k":"v"}').toString('base64') });
	assert.equal(r.status, 200, r.text);
	assert.equal(r.body.Key, 'priv/folder/a.txt');
	assert.ok(r.body.Id);
	r = await put(ALICE, 'priv', 'folder/a.txt', 'again');
	assert.equal(r.status, 400);
	assert.equal(r.body.statusCode, '409');
	assert.equal(r.body.error, 'Duplicate');
	r = await call(base, 'GET', '/object/priv/folder/a.txt', { headers: ALICE });
	assert.equal(r.status, 200);
	assert.equal(r.text, 'hello world');
	assert.equal(r.headers.get('content-type'), 'text/plain');
	assert.equal(r.headers.get('cache-control'), 'max-age=3600');
	assert.equal(r.headers.get('accept-ranges'), 'bytes');
	assert.match(r.headers.get('etag'), /^"[0-9a-f]{32}"$/);
	assert.ok(r.headers.get('last-modified'));
	assert.equal(r.headers.get('content-length'), '11');
	const etag = r.headers.get('etag');
	r = await put(ALICE, 'priv', 'folder/a.txt', 'replaced!', { 'x-upsert': 'true' });
	assert.equal(r.status, 200);
	r = await call(base, 'GET', '/object/authenticated/priv/folder/a.txt', { headers: ALICE });
	assert.equal(r.text, 'replaced!');
	assert.notEqual(r.headers.get('etag'), etag);
	// PUT is always an upsert
	r = await call(base, 'PUT', '/object/priv/folder/a.txt', { headers: { ...ALICE, 'content-type': 'text/plain' }, raw: true, body: 'put body' });
	assert.equal(r.status, 200);
	r = await call(base, 'GET', '/object/info/priv/folder/a.txt', { headers: ALICE });
	assert.equal(r.status, 200);
	assert.equal(r.body.size, 8);
	assert.equal(r.body.content_type, 'text/plain');
	assert.deepEqual(r.body.metadata, {});
	assert.equal(r.headers.get('etag'), r.body.etag);
	// missing object
	r = await call(base, 'GET', '/object/priv/folder/none.txt', { headers: ALICE });
	assert.equal(r.status, 400);
	assert.deepEqual(r.body, { statusCode: '404', code: 'NoSuchKey', error: 'Not found', message: 'The resource was not found' });
	r = await call(base, 'HEAD', '/object/priv/folder/none.txt', { headers: ALICE });
	assert.equal(r.status, 400);
	r = await call(base, 'HEAD', '/object/priv/folder/a.txt', { headers: ALICE });
	assert.equal(r.status, 200);
	assert.equal(r.headers.get('content-length'), '8');
	assert.equal(r.text, '');
});

test('multipart upload as storage-js sends it', T, async () => {
	const fd = new FormData();
	fd.append('cacheControl', '60');
	fd.append('metadata', JSON.stringify({ a: 1 }));
	fd.append('', new Blob([Buffer.from('multipart content \r\n--not-a-boundary')], { type: 'application/json' }), 'blob');
	const res = await fetch(`${base}/object/priv/mp/data.json`, { method: 'POST', headers: { ...ALICE, 'x-upsert': 'false' }, body: fd });
	assert.equal(res.status, 200, await res.clone().text());
	let r = await call(base, 'GET', '/object/priv/mp/data.json', { headers: ALICE });
	assert.equal(r.text, 'multipart content \r\n--not-a-boundary');
	assert.equal(r.headers.get('content-type'), 'application/json');
	assert.equal(r.headers.get('cache-control'), 'max-age=60');
	r = await call(base, 'GET', '/object/info/priv/mp/data.json', { headers: ALICE });
	assert.deepEqual(r.body.metadata, { a: 1 });
	// a larger multipart body, streamed in chunks
	const big = Buffer.alloc(3 * 1024 * 1024 + 17, 'z');
	const fd2 = new FormData();
	fd2.append('file', new Blob([big], { type: 'application/octet-stream' }), 'big.bin');
	const res2 = await fetch(`${base}/object/priv/mp/big.bin`, { method: 'POST', headers: SVC, body: fd2 });
	assert.equal(res2.status, 200);
	r = await call(base, 'HEAD', '/object/priv/mp/big.bin', { headers: SVC });
	assert.equal(Number(r.headers.get('content-length')), big.length);
});

// Regression: the file data and "\r\n--boundary" arrive in one packet and the
// closing "--\r\n" in a later one. The parser paused the request for the
// file's 'drain', ended the file (no 'drain' ever comes after end()) and never
// resumed: the answer never came and fetch failed after undici's 300 s.
test('multipart upload whose closing "--" arrives in a later packet', T, async () => {
	const B = 'emu-test-boundary';
	const data = Buffer.alloc(1024 * 1024, 'q');
	const head = Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="file"; filename="late.bin"\r\n\r\n`);
	const delim = Buffer.from(`\r\n--${B}`), close = Buffer.from('--\r\n');
	for (let i = 0; i < 3; i++) {
		const status = await new Promise((resolve, reject) => {
			const req = http.request(`${base}/object/priv/mp/late${i}.bin`, {
				method: 'POST',
				headers: { ...SVC, 'content-type': `multipart/form-data; boundary=${B}`, 'content-length': head.length + data.length + delim.length + close.length },
			});
			const timer = setTimeout(() => { req.destroy(); reject(new Error('no answer within 5 s')); }, 5000);
			req.on('response', (res) => { res.resume(); res.on('end', () => { clearTimeout(timer); resolve(res.statusCode); }); });
			req.on('error', (e) => { clearTimeout(timer); reject(e); });
			req.write(head);
			req.write(Buffer.concat([data, delim]));
			setTimeout(() => req.end(close), 50);
		});
		assert.equal(status, 200);
		const r = await call(base, 'HEAD', `/object/priv/mp/late${i}.bin`, { headers: SVC });
		assert.equal(Number(r.headers.get('content-length')), data.length);
	}
});

test('ranges, ETag and If-None-Match', T, async () => {
	await put(SVC, 'pub', 'r.txt', '0123456789', { 'x-upsert': 'true' });
	let r = await call(base, 'GET', '/object/public/pub/r.txt', { headers: { range: 'bytes=2-5' } });
	assert.equal(r.status, 206);
	assert.equal(r.text, '2345');
	assert.equal(r.headers.get('content-range'), 'bytes 2-5/10');
	assert.equal(r.headers.get('content-length'), '4');
	r = await call(base, 'GET', '/object/public/pub/r.txt', { headers: { range: 'bytes=-3' } });
	assert.equal(r.text, '789');
	assert.equal(r.headers.get('content-range'), 'bytes 7-9/10');
	r = await call(base, 'GET', '/object/public/pub/r.txt', { headers: { range: 'bytes=8-' } });
	assert.equal(r.text, '89');
	r = await call(base, 'GET', '/object/public/pub/r.txt', { headers: { range: 'bytes=20-30' } });
	assert.equal(r.status, 416);
	assert.equal(r.headers.get('content-range'), 'bytes */10');
	r = await call(base, 'GET', '/object/public/pub/r.txt');
	const etag = r.headers.get('etag');
	r = await call(base, 'GET', '/object/public/pub/r.txt', { headers: { 'if-none-match': etag } });
	assert.equal(r.status, 304);
	assert.equal(r.text, '');
	assert.equal(r.headers.get('etag'), etag);
	r = await call(base, 'GET', '/object/public/pub/r.txt', { headers: { 'if-none-match': '"other"' } });
	assert.equal(r.status, 200);
	r = await call(base, 'GET', '/object/public/pub/r.txt', { headers: { 'if-modified-since': new Date(Date.now() + 60000).toUTCString() } });
	assert.equal(r.status, 304);
	r = await call(base, 'GET', '/object/public/pub/r.txt?download=name.txt');
	assert.match(r.headers.get('content-disposition'), /^attachment; filename=name\.txt/);
	// public route refuses private buckets
	await put(SVC, 'priv', 'p.txt', 'secret', { 'x-upsert': 'true' });
	r = await call(base, 'GET', '/object/public/priv/p.txt');
	assert.equal(r.status, 400);
	assert.equal(r.body.statusCode, '404');
});

test('ownership: anon, other users and service_role', T, async () => {
	await put(ALICE, 'priv', 'alice/own.txt', 'mine', { 'x-upsert': 'true' });
	let r = await call(base, 'GET', '/object/priv/alice/own.txt', { headers: BOB });
	assert.equal(r.status, 400);
	assert.equal(r.body.statusCode, '404');
	r = await call(base, 'GET', '/object/priv/alice/own.txt', { headers: ANON });
	assert.equal(r.body.statusCode, '404');
	r = await call(base, 'GET', '/object/priv/alice/own.txt', { headers: SVC });
	assert.equal(r.text, 'mine');
	r = await put(BOB, 'priv', 'alice/own.txt', 'overwrite', { 'x-upsert': 'true' });
	assert.equal(r.status, 400);
	assert.equal(r.body.statusCode, '403');
	r = await put(ANON, 'priv', 'anon.txt', 'x');
	assert.equal(r.body.statusCode, '403');
	r = await call(base, 'DELETE', '/object/priv', { headers: BOB, body: { prefixes: ['alice/own.txt'] } });
	assert.equal(r.status, 200);
	assert.deepEqual(r.body, []);
	r = await call(base, 'POST', '/object/list/priv', { headers: BOB, body: { prefix: 'alice', limit: 100, offset: 0, sortBy: { column: 'name', order: 'asc' } } });
	assert.deepEqual(r.body, []);
	r = await call(base, 'POST', '/object/list/priv', { headers: ALICE, body: { prefix: 'alice', limit: 100, offset: 0, sortBy: { column: 'name', order: 'asc' } } });
	assert.deepEqual(r.body.map((x) => x.name), ['own.txt']);
	r = await call(base, 'DELETE', '/object/priv', { headers: ALICE, body: { prefixes: ['alice/own.txt', 'alice/missing.txt'] } });
	assert.equal(r.body.length, 1);
	assert.equal(r.body[0].name, 'alice/own.txt');
});

test('list with prefix, folders, search, sort, limit and offset', T, async () => {
	for (const n of ['l/b.txt', 'l/a.txt', 'l/c.txt', 'l/sub/x.txt', 'l/sub2/y.txt'])
		assert.equal((await put(SVC, 'priv', n, n, { 'x-upsert': 'true' })).status, 200);
	let r = await call(base, 'POST', '/object/list/priv', { headers: SVC, body: { prefix: 'l', limit: 100, offset: 0, sortBy: { column: 'name', order: 'asc' } } });
	assert.deepEqual(r.body.map((x) => x.name), ['a.txt', 'b.txt', 'c.txt', 'sub', 'sub2']);
	const folder = r.body.find((x) => x.name === 'sub');
	assert.equal(folder.id, null);
	const file = r.body[0];
	for (const k of ['eTag', 'size', 'mimetype', 'cacheControl', 'lastModified', 'contentLength', 'httpStatusCode'])
		assert.ok(k in file.metadata, k);
	r = await call(base, 'POST', '/object/list/priv', { headers: SVC, body: { prefix: 'l/', limit: 2, offset: 1, sortBy: { column: 'name', order: 'desc' } } });
	assert.deepEqual(r.body.map((x) => x.name), ['sub', 'c.txt']);
	r = await call(base, 'POST', '/object/list/priv', { headers: SVC, body: { prefix: 'l', search: 'su', sortBy: { column: 'name', order: 'asc' } } });
	assert.deepEqual(r.body.map((x) => x.name), ['sub', 'sub2']);
});

test('move, copy, single delete', T, async () => {
	await put(ALICE, 'priv', 'mv/src.txt', 'payload', { 'x-upsert': 'true' });
	let r = await call(base, 'POST', '/object/copy', { headers: ALICE, body: { bucketId: 'priv', sourceKey: 'mv/src.txt', destinationKey: 'mv/copy.txt' } });
	assert.equal(r.status, 200, r.text);
	assert.equal(r.body.Key, 'priv/mv/copy.txt');
	r = await call(base, 'POST', '/object/move', { headers: ALICE, body: { bucketId: 'priv', sourceKey: 'mv/src.txt', destinationKey: 'mv/dst.txt' } });
	assert.deepEqual(r.body, { message: 'Successfully moved' });
	r = await call(base, 'GET', '/object/priv/mv/dst.txt', { headers: ALICE });
	assert.equal(r.text, 'payload');
	r = await call(base, 'GET', '/object/priv/mv/src.txt', { headers: ALICE });
	assert.equal(r.body.statusCode, '404');
	r = await call(base, 'POST', '/object/move', { headers: ALICE, body: { bucketId: 'priv', sourceKey: 'mv/copy.txt', destinationKey: 'mv/dst.txt' } });
	assert.equal(r.body.statusCode, '409');
	r = await call(base, 'DELETE', '/object/priv/mv/dst.txt', { headers: ALICE });
	assert.deepEqual(r.body, { message: 'Successfully deleted' });
	r = await call(base, 'DELETE', '/object/priv/mv/dst.txt', { headers: ALICE });
	assert.equal(r.body.statusCode, '404');
});

test('signed URLs: create, batch, fetch without key, expiry and tampering', T, async () => {
	await put(ALICE, 'priv', 's/doc.txt', 'signed content', { 'x-upsert': 'true' });
	let r = await call(base, 'POST', '/object/sign/priv/s/doc.txt', { headers: ALICE, body: { expiresIn: 60 } });
	assert.equal(r.status, 200);
	assert.match(r.body.signedURL, /^\/object\/sign\/priv\/s\/doc\.txt\?token=/);
	const signed = r.body.signedURL;
	const tok = new URL(signed, 'http://x').searchParams.get('token');
	const c = decodeJwt(tok);
	assert.equal(c.url, 'priv/s/doc.txt');
	assert.equal(c.exp - c.iat, 60);
	r = await call(base, 'GET', `/storage/v1${signed}`);
	assert.equal(r.status, 200);
	assert.equal(r.text, 'signed content');
	assert.equal(r.headers.get('expires'), new Date(c.exp * 1000).toUTCString());
	r = await call(base, 'GET', signed, { headers: { range: 'bytes=0-5' } });
	assert.equal(r.status, 206);
	assert.equal(r.text, 'signed');
	// string expiresIn as supabase-py sends it
	r = await call(base, 'POST', '/object/sign/priv/s/doc.txt', { headers: ALICE, body: { expiresIn: '60' } });
	assert.equal(r.status, 200);
	// bob cannot sign alice's object
	r = await call(base, 'POST', '/object/sign/priv/s/doc.txt', { headers: BOB, body: { expiresIn: 60 } });
	assert.equal(r.body.statusCode, '404');
	// token for another path
	r = await call(base, 'GET', `/object/sign/priv/other.txt?token=${tok}`);
	assert.equal(r.status, 400);
	assert.equal(r.body.code, 'InvalidSignature');
	// expired
	const old = signJwt({ url: 'priv/s/doc.txt', iat: 1000, exp: 1060 }, SECRET);
	r = await call(base, 'GET', `/object/sign/priv/s/doc.txt?token=${old}`);
	assert.equal(r.status, 400);
	assert.equal(r.body.code, 'InvalidJWT');
	assert.equal(r.body.message, 'jwt expired');
	// wrong key
	r = await call(base, 'GET', `/object/sign/priv/s/doc.txt?token=${signJwt({ url: 'priv/s/doc.txt', exp: c.exp }, 'nope')}`);
	assert.equal(r.body.code, 'InvalidJWT');
	// batch
	r = await call(base, 'POST', '/object/sign/priv', { headers: ALICE, body: { expiresIn: 30, paths: ['s/doc.txt', 's/none.txt'] } });
	assert.equal(r.status, 200);
	assert.equal(r.body.length, 2);
	assert.equal(r.body[0].error, null);
	assert.equal(r.body[0].path, 's/doc.txt');
	assert.match(r.body[0].signedURL, /^\/object\/sign\/priv\/s\/doc\.txt\?token=/);
	assert.equal(r.body[1].signedURL, null);
	assert.match(r.body[1].error, /does not exist/);
});

test('signed upload URLs', T, async () => {
	let r = await call(base, 'POST', '/object/upload/sign/priv/up/new.txt', { headers: ALICE, body: {} });
	assert.equal(r.status, 200);
	assert.match(r.body.url, /^\/object\/upload\/sign\/priv\/up\/new\.txt\?token=/);
	assert.ok(r.body.token);
	const url = r.body.url;
	r = await call(base, 'PUT', url, { headers: { 'content-type': 'text/plain', 'x-upsert': 'false' }, raw: true, body: 'via signed upload' });
	assert.equal(r.status, 200, r.text);
	assert.equal(r.body.Key, 'priv/up/new.txt');
	r = await call(base, 'GET', '/object/priv/up/new.txt', { headers: ALICE });
	assert.equal(r.text, 'via signed upload');
	// the owner is the signer
	assert.equal((await call(base, 'GET', '/object/priv/up/new.txt', { headers: BOB })).body.statusCode, '404');
	r = await call(base, 'PUT', url, { headers: { 'content-type': 'text/plain' }, raw: true, body: 'again' });
	assert.equal(r.body.statusCode, '409');
	r = await call(base, 'PUT', '/object/upload/sign/priv/up/new.txt?token=garbage', { headers: { 'content-type': 'text/plain' }, raw: true, body: 'x' });
	assert.equal(r.status, 400);
	assert.equal(r.body.code, 'InvalidJWT');
});

test('faults and request log', T, async () => {
	await call(base, 'DELETE', '/_emu/requests');
	await call(base, 'POST', '/_emu/fault', { body: { mode: 'status', status: 502, path: '/object/sign', count: 1 } });
	let r = await call(base, 'POST', '/object/sign/priv/s/doc.txt', { headers: ALICE, body: { expiresIn: 60 } });
	assert.equal(r.status, 502);
	r = await call(base, 'POST', '/object/sign/priv/s/doc.txt', { headers: ALICE, body: { expiresIn: 60 } });
	assert.equal(r.status, 200);
	await call(base, 'POST', '/_emu/fault', { body: { mode: 'ratelimit', retry_after: 3, count: 1 } });
	r = await call(base, 'GET', '/bucket', { headers: SVC });
	assert.equal(r.status, 429);
	assert.equal(r.headers.get('retry-after'), '3');
	await call(base, 'POST', '/_emu/fault', { body: { mode: 'down', count: 1 } });
	await assert.rejects(fetch(`${base}/bucket`, { headers: SVC }));
	assert.equal((await call(base, 'GET', '/bucket', { headers: SVC })).status, 200);
	const log = (await call(base, 'GET', '/_emu/requests')).body;
	const signs = log.filter((e) => e.service_path === '/object/sign/priv/s/doc.txt');
	assert.equal(signs.length, 2);
	assert.equal(signs[0].fault, 'status');
	assert.deepEqual(JSON.parse(signs[1].body), { expiresIn: 60 });
	assert.equal(signs[1].status, 200);
});

test('CLI: port file, persisted metadata across restarts, SIGTERM', T, async () => {
	const d = tmpDir('storage-cli-');
	const portFile = path.join(d, 'port');
	const script = fileURLToPath(new URL('../storage.mjs', import.meta.url));
	const sf = secretFile(d);
	const run = async (fn) => {
		fs.rmSync(portFile, { force: true });
		const child = spawn(process.execPath, [script, '--host', '127.0.0.1', '--port', '0', '--port-file', portFile,
			'--jwt-secret-file', sf, '--data-dir', path.join(d, 'data')], { stdio: 'ignore' });
		const exited = new Promise((r) => child.on('exit', (code) => r(code)));
		try {
			for (let i = 0; i < 100 && !fs.existsSync(portFile); i++) await new Promise((r) => setTimeout(r, 50));
			await fn(`http://127.0.0.1:${Number(fs.readFileSync(portFile, 'utf8'))}`);
		} finally {
			child.kill('SIGTERM');
			assert.equal(await exited, 0);
		}
	};
	try {
		await run(async (b) => {
			assert.equal((await call(b, 'POST', '/bucket', { headers: SVC, body: { name: 'keep', public: true } })).status, 200);
			assert.equal((await call(b, 'POST', '/object/keep/f.txt', { headers: { ...SVC, 'content-type': 'text/plain' }, raw: true, body: 'persisted' })).status, 200);
		});
		await run(async (b) => {
			const r = await call(b, 'GET', '/object/public/keep/f.txt');
			assert.equal(r.text, 'persisted');
		});
	} finally {
		fs.rmSync(d, { recursive: true, force: true });
	}
});
