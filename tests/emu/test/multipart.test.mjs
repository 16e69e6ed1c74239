// Unit tests for the streaming multipart parser (tests/emu/lib/multipart.mjs).
// Every body is fed at every split point, in 1-byte chunks and in chunks of
// every size, into a fast sink and into a slow one whose write() always asks
// for backpressure. Each parse must finish (or fail) within WATCHDOG_MS:
// a parser that leaves the request paused hangs, and that is reported here
// with the chunking that caused it instead of as a 300 s client timeout.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { parseMultipart, boundaryOf } from '../lib/multipart.mjs';
import { TEST_TIMEOUT } from '../lib/testutil.mjs';

const T = { timeout: TEST_TIMEOUT };
const WATCHDOG_MS = 2000;
const BOUNDARY = '----formdata-undici-0123456789';

// A body as undici's FormData serializer writes it.
function build(boundary, parts, { preamble = '', epilogue = '' } = {}) {
	const out = [Buffer.from(preamble)];
	for (const p of parts) {
		let h = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`;
		if (p.filename !== undefined) h += `; filename="${p.filename}"`;
		h += '\r\n';
		if (p.type) h += `Content-Type: ${p.type}\r\n`;
		out.push(Buffer.from(`${h}\r\n`), Buffer.from(p.data), Buffer.from('\r\n'));
	}
	out.push(Buffer.from(`--${boundary}--\r\n${epilogue}`));
	return Buffer.concat(out);
}

// A request stand-in that delivers exactly these chunks, honouring pause().
const requestOf = (chunks) => Readable.from(chunks.map((c) => Buffer.from(c)), { objectMode: false });

function sinkFactory(kind, store) {
	return () => {
		const got = [];
		const w = kind === 'slow'
			// highWaterMark 1: every write() returns false; completes asynchronously
			? new Writable({ highWaterMark: 1, write(c, _e, cb) { got.push(Buffer.from(c)); setImmediate(cb); } })
			: new Writable({ write(c, _e, cb) { got.push(Buffer.from(c)); cb(); } });
		store.sink = w;
		store.data = () => Buffer.concat(got);
		return w;
	};
}

function within(p, ms, what) {
	let timer;
	const t = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`hung: ${what}`)), ms); });
	return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// Parses `chunks`; resolves { fields, file, data } once the sink has finished.
async function parse(chunks, boundary, kind, what, opts = {}) {
	const store = {};
	const run = (async () => {
		const r = await parseMultipart(requestOf(chunks), boundary, { openFile: sinkFactory(kind, store), ...opts });
		if (store.sink && !store.sink.writableFinished)
			await new Promise((res, rej) => { store.sink.once('finish', res); store.sink.once('error', rej); });
		return { ...r, data: store.data ? store.data() : null };
	})();
	return within(run, WATCHDOG_MS, what);
}

function* chunkings(body) {
	yield ['whole', [body]];
	for (let i = 1; i < body.length; i++) yield [`split at ${i}`, [body.subarray(0, i), body.subarray(i)]];
	for (let n = 1; n < body.length; n++) {
		const cs = [];
		for (let i = 0; i < body.length; i += n) cs.push(body.subarray(i, i + n));
		yield [`${n}-byte chunks`, cs];
	}
	// splits on both sides of the closing delimiter, as undici's separate writes
	const close = body.lastIndexOf(Buffer.from('\r\n--'));
	for (let a = Math.max(1, close - 4); a <= close + 4; a++)
		for (let b = a + 1; b < body.length; b++)
			yield [`3 chunks at ${a},${b}`, [body.subarray(0, a), body.subarray(a, b), body.subarray(b)]];
}

async function allChunkings(body, expect, boundary = BOUNDARY) {
	let n = 0;
	for (const kind of ['fast', 'slow']) {
		for (const [how, chunks] of chunkings(body)) {
			const what = `${kind} sink, ${how} of ${body.length}`;
			const r = await parse(chunks, boundary, kind, what);
			assert.deepEqual(r.fields, expect.fields, what);
			assert.equal(r.file?.filename ?? null, expect.filename, what);
			if (expect.data === null) assert.equal(r.data, null, what);
			else assert.ok(r.data.equals(expect.data), `${what}: file content differs`);
			n++;
		}
	}
	return n;
}

// Binary content that looks like a boundary without being one.
function lookalikes(boundary) {
	const parts = [Buffer.from([0x0d]), Buffer.from([0x0a]), Buffer.from('\r\n'), Buffer.from('\r\r\n\n'),
		Buffer.from('\r\n-'), Buffer.from('\r\n--'), Buffer.from(`--${boundary}`), Buffer.from(`\r\n-${boundary}`)];
	for (let k = 1; k < boundary.length; k++) parts.push(Buffer.from(`\r\n--${boundary.slice(0, k)}`), Buffer.from([0x00, 0xff]));
	parts.push(Buffer.from(`\n--${boundary}--`), Buffer.from(`\r--${boundary}\r\n`));
	const all = Buffer.alloc(256);
	for (let i = 0; i < 256; i++) all[i] = i;
	parts.push(all);
	return Buffer.concat(parts);
}

test('boundaryOf', T, () => {
	assert.equal(boundaryOf('multipart/form-data; boundary=----abc'), '----abc');
	assert.equal(boundaryOf('multipart/form-data; boundary="a b"; charset=x'), 'a b');
	assert.equal(boundaryOf('multipart/form-data'), null);
});

test('the storage-js body at every split point, 1-byte chunks, every chunk size', T, async () => {
	const data = Buffer.from('multipart content \r\n--not-a-boundary');
	const body = build(BOUNDARY, [
		{ name: 'cacheControl', data: '60' },
		{ name: 'metadata', data: '{"a":1}' },
		{ name: '', filename: 'blob', type: 'application/json', data },
	]);
	const n = await allChunkings(body, { fields: { cacheControl: '60', metadata: '{"a":1}' }, filename: 'blob', data });
	assert.ok(n > 4 * body.length);
});

test('binary content with CR, LF and partial-boundary lookalikes', T, async () => {
	const b = 'XyZ-b0undary';
	const data = lookalikes(b);
	const body = build(b, [{ name: 'file', filename: 'x.bin', type: 'application/octet-stream', data }]);
	await allChunkings(body, { fields: {}, filename: 'x.bin', data }, b);
});

test('content ending in a delimiter prefix, right before the real delimiter', T, async () => {
	const b = 'bnd';
	for (const tail of ['\r', '\r\n', '\r\n-', '\r\n--', '\r\n--b', '\r\n--bn', '-', '--bnd']) {
		const data = Buffer.from(`x${tail}`);
		const body = build(b, [{ name: 'f', filename: 'f', data }, { name: 'after', data: `v${tail}` }],
			{ preamble: 'ignored preamble\r\n', epilogue: 'ignored\r\n--bnd\r\nepilogue' });
		await allChunkings(body, { fields: { after: `v${tail}` }, filename: 'f', data }, b);
	}
});

test('empty file and empty fields', T, async () => {
	const body = build(BOUNDARY, [{ name: 'e', data: '' }, { name: '', filename: 'empty', data: '' }, { name: 'z', data: '' }]);
	await allChunkings(body, { fields: { e: '', z: '' }, filename: 'empty', data: Buffer.alloc(0) });
});

test('a body without a file part', T, async () => {
	const body = build(BOUNDARY, [{ name: 'only', data: 'field' }]);
	await allChunkings(body, { fields: { only: 'field' }, filename: null, data: null });
});

test('a large file through the slow sink keeps backpressure and finishes', T, async () => {
	const data = Buffer.alloc(300 * 1024 + 7);
	for (let i = 0; i < data.length; i++) data[i] = (i * 131 + (i >> 8)) & 0xff;
	const body = build(BOUNDARY, [{ name: 'cacheControl', data: '3600' }, { name: 'file', filename: 'big.bin', data }]);
	const close = body.length - `\r\n--${BOUNDARY}--\r\n`.length;
	for (const size of [1024, 16384, 65536, 65537]) {
		const cs = [];
		for (let i = 0; i < body.length; i += size) cs.push(body.subarray(i, i + size));
		for (const kind of ['fast', 'slow']) {
			const r = await parse(cs, BOUNDARY, kind, `${kind} ${size}`);
			assert.ok(r.data.equals(data));
		}
	}
	// backpressure is kept: the slow sink pauses the request, and it flows again
	const req = requestOf([body]);
	let pauses = 0;
	const pause = req.pause.bind(req);
	req.pause = () => { pauses++; return pause(); };
	const store = {};
	await within(parseMultipart(req, BOUNDARY, { openFile: sinkFactory('slow', store) }), WATCHDOG_MS, 'spy');
	assert.ok(pauses >= 1, 'the request was paused for the sink');
	assert.equal(req.isPaused(), false);
	// the HTTP shape of the hang: file data and the delimiter in one chunk, "--" in the next
	for (const cut of [close + 2, close + 2 + 2 + BOUNDARY.length, close + 2 + 2 + BOUNDARY.length + 1]) {
		const r = await parse([body.subarray(0, 65536), body.subarray(65536, cut), body.subarray(cut)], BOUNDARY, 'slow', `cut ${cut}`);
		assert.ok(r.data.equals(data));
		assert.deepEqual(r.fields, { cacheControl: '3600' });
	}
});

test('every truncated body is rejected, not left hanging', T, async () => {
	const data = Buffer.from('abc\r\n--');
	const body = build(BOUNDARY, [{ name: 'k', data: 'v' }, { name: 'file', filename: 'f', data }]);
	const closeEnd = body.length - 2; // after the closing "--"
	for (const kind of ['fast', 'slow']) {
		for (let i = 0; i < body.length; i++) {
			const what = `${kind} sink, first ${i} bytes`;
			const p = parse([body.subarray(0, i)], BOUNDARY, kind, what);
			if (i >= closeEnd) assert.ok((await p).data.equals(data), what);
			else await assert.rejects(p, (e) => !/^hung/.test(e.message), what);
		}
	}
});

test('malformed bodies, too-large fields and a failing sink are errors', T, async () => {
	await assert.rejects(parse([`--${BOUNDARY}XX\r\n`], BOUNDARY, 'fast', 'bad'), /malformed/);
	const big = build(BOUNDARY, [{ name: 'k', data: 'x'.repeat(100) }]);
	await assert.rejects(parse([big], BOUNDARY, 'fast', 'big', { maxFieldBytes: 10 }), /too large/);
	const body = build(BOUNDARY, [{ name: 'file', filename: 'f', data: 'y'.repeat(1000) }]);
	let destroyed = false;
	const failing = () => {
		const w = new Writable({ highWaterMark: 1, write(_c, _e, cb) { setImmediate(() => cb(new Error('disk full'))); } });
		w.on('close', () => { destroyed = true; });
		return w;
	};
	const req = requestOf([body.subarray(0, 300), body.subarray(300)]);
	await within(assert.rejects(parseMultipart(req, BOUNDARY, { openFile: failing }), /disk full/), WATCHDOG_MS, 'failing sink');
	await new Promise((r) => setImmediate(r));
	assert.ok(destroyed);
	assert.equal(req.isPaused(), false, 'the request is not left paused');
});
