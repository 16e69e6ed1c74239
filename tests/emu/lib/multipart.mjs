// Streaming multipart/form-data parser: small fields are collected in memory,
// the file part is piped to a writable stream with backpressure.
const EMPTY = Buffer.alloc(0);
const CRLF2 = Buffer.from('\r\n\r\n');

export function boundaryOf(contentType) {
	const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType || '');
	return m ? (m[1] || m[2]).trim() : null;
}

function parseHeaders(block) {
	const h = {};
	for (const line of block.split('\r\n')) {
		const i = line.indexOf(':');
		if (i > 0) h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
	}
	const cd = h['content-disposition'] || '';
	const name = /\bname="([^"]*)"/i.exec(cd);
	const filename = /\bfilename="([^"]*)"/i.exec(cd);
	return {
		name: name ? name[1] : '',
		filename: filename ? filename[1] : null,
		contentType: h['content-type'] || null,
	};
}

// opts.openFile(part) -> Writable; resolves { fields, file: part|null } once the
// request has ended after the closing delimiter, rejects on a malformed or
// truncated body, a too-large field or header block, or a sink error.
// The first part with a filename (or, failing that, the one named "" or "file")
// is the file; at most one file is accepted, as Storage does.
//
// Backpressure: when the sink's write() returns false the request is paused
// until the sink emits 'drain'. A Writable never emits 'drain' once end() has
// been called, so ending the sink (at the file part's delimiter) must resume
// the request itself; otherwise the rest of the body (the closing "--", later
// fields) is never read, 'end' never comes and the client waits forever.
export function parseMultipart(req, boundary, { openFile, maxFieldBytes = 1 << 20, maxHeaderBytes = 16384 }) {
	return new Promise((resolve, reject) => {
		const dash = Buffer.from(`--${boundary}`);
		const delim = Buffer.from(`\r\n--${boundary}`);
		let buf = EMPTY;
		let state = 'preamble';
		let part = null, sink = null, fieldChunks = [], fieldBytes = 0;
		const fields = {};
		let file = null, done = false;
		let paused = false; // the request is paused until the sink drains

		const onDrain = () => {
			if (!paused) return;
			paused = false;
			req.resume();
		};
		// Stops waiting for the sink: the request flows again.
		const release = () => {
			if (sink) sink.off('drain', onDrain);
			if (paused) { paused = false; req.resume(); }
		};
		const fail = (e) => {
			if (done) return;
			done = true;
			release();
			if (sink) { sink.destroy(); sink = null; }
			req.resume(); // discard the rest of the body
			reject(e);
		};

		const write = (chunk) => {
			if (!chunk.length) return;
			if (sink) {
				if (!sink.write(chunk) && !paused) {
					paused = true;
					req.pause();
					sink.once('drain', onDrain);
				}
			} else {
				fieldBytes += chunk.length;
				if (fieldBytes > maxFieldBytes) return fail(new Error('multipart field too large'));
				fieldChunks.push(chunk);
			}
		};
		const finishPart = () => {
			if (sink) { release(); sink.end(); sink = null; }
			else if (part) fields[part.name] = Buffer.concat(fieldChunks).toString('utf8');
			part = null; fieldChunks = []; fieldBytes = 0;
		};

		const step = () => {
			while (!done) {
				if (state === 'preamble') {
					const i = buf.indexOf(dash);
					if (i < 0) { buf = buf.subarray(Math.max(0, buf.length - (dash.length - 1))); return; }
					buf = buf.subarray(i + dash.length);
					state = 'after-boundary';
				} else if (state === 'after-boundary') {
					// "--" closes the body; otherwise optional transport padding, then CRLF
					if (buf.length < 2) return;
					if (buf[0] === 0x2d && buf[1] === 0x2d) { state = 'end'; buf = EMPTY; return; }
					let j = 0;
					while (j < buf.length && (buf[j] === 0x20 || buf[j] === 0x09)) j++;
					if (j > 256) return fail(new Error('malformed multipart body'));
					if (buf.length < j + 2) return;
					if (buf[j] !== 0x0d || buf[j + 1] !== 0x0a) return fail(new Error('malformed multipart body'));
					buf = buf.subarray(j); // keeps the CRLF: an empty header block is then "\r\n\r\n"
					state = 'headers';
				} else if (state === 'headers') {
					const i = buf.indexOf(CRLF2);
					if (i < 0) {
						if (buf.length > maxHeaderBytes) return fail(new Error('multipart headers too large'));
						return;
					}
					part = parseHeaders(i > 2 ? buf.subarray(2, i).toString('utf8') : '');
					buf = buf.subarray(i + 4);
					const isFile = !file && (part.filename !== null || part.name === '' || part.name === 'file');
					if (isFile) { file = part; sink = openFile(part); sink.on('error', fail); }
					state = 'body';
				} else if (state === 'body') {
					const i = buf.indexOf(delim);
					if (i < 0) {
						// keep what could be the start of a delimiter split across chunks
						const keep = Math.min(buf.length, delim.length - 1);
						write(buf.subarray(0, buf.length - keep));
						buf = buf.subarray(buf.length - keep);
						return;
					}
					write(buf.subarray(0, i));
					if (done) return;
					buf = buf.subarray(i + delim.length);
					finishPart();
					state = 'after-boundary';
				} else {
					buf = EMPTY; // epilogue: ignored
					return;
				}
			}
		};
		req.on('data', (c) => {
			if (done) return;
			buf = buf.length ? Buffer.concat([buf, c]) : c;
			step();
		});
		req.on('end', () => {
			if (done) return;
			if (state !== 'end') return fail(new Error('unexpected end of multipart body'));
			done = true;
			resolve({ fields, file });
		});
		req.on('error', fail);
		// aborted by the client: 'close' without 'end'
		req.on('close', () => fail(new Error('multipart request closed before its end')));
	});
}
