// Streaming multipart/form-data parser: small fields are collected in memory,
// the file part is piped to a writable stream with backpressure.
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

// opts.openFile(part) -> Writable; resolves { fields, file: part|null }.
// The first part with a filename (or, failing that, the one named "" or "file")
// is the file; at most one file is accepted, as Storage does.
export function parseMultipart(req, boundary, { openFile, maxFieldBytes = 1 << 20 }) {
	return new Promise((resolve, reject) => {
		const dash = Buffer.from(`--${boundary}`);
		const delim = Buffer.from(`\r\n--${boundary}`);
		let buf = Buffer.alloc(0);
		let state = 'preamble';
		let part = null, sink = null, fieldChunks = [], fieldBytes = 0;
		const fields = {};
		let file = null, done = false;
		const fail = (e) => { if (done) return; done = true; req.unpause?.(); reject(e); };

		const write = (chunk) => {
			if (!chunk.length) return;
			if (sink) {
				if (!sink.write(chunk)) {
					req.pause();
					sink.once('drain', () => req.resume());
				}
			} else {
				fieldBytes += chunk.length;
				if (fieldBytes > maxFieldBytes) return fail(new Error('multipart field too large'));
				fieldChunks.push(chunk);
			}
		};
		const finishPart = () => {
			if (sink) { sink.end(); sink = null; }
			else if (part) fields[part.name] = Buffer.concat(fieldChunks).toString('utf8');
			part = null; fieldChunks = []; fieldBytes = 0;
		};

		const step = () => {
			for (;;) {
				if (state === 'preamble') {
					const i = buf.indexOf(dash);
					if (i < 0) { buf = buf.subarray(Math.max(0, buf.length - dash.length)); return; }
					buf = buf.subarray(i + dash.length);
					state = 'after-boundary';
				} else if (state === 'after-boundary') {
					if (buf.length < 2) return;
					if (buf[0] === 0x2d && buf[1] === 0x2d) { state = 'end'; buf = Buffer.alloc(0); return; }
					if (buf[0] === 0x0d && buf[1] === 0x0a) { buf = buf.subarray(2); state = 'headers'; }
					else return fail(new Error('malformed multipart body'));
				} else if (state === 'headers') {
					const i = buf.indexOf('\r\n\r\n');
					if (i < 0) { if (buf.length > 16384) return fail(new Error('multipart headers too large')); return; }
					part = parseHeaders(buf.subarray(0, i).toString('utf8'));
					buf = buf.subarray(i + 4);
					const isFile = !file && (part.filename !== null || part.name === '' || part.name === 'file');
					if (isFile) { file = part; sink = openFile(part); sink.on('error', fail); }
					state = 'body';
				} else if (state === 'body') {
					const i = buf.indexOf(delim);
					if (i < 0) {
						const keep = delim.length - 1;
						if (buf.length > keep) { write(buf.subarray(0, buf.length - keep)); buf = buf.subarray(buf.length - keep); }
						return;
					}
					write(buf.subarray(0, i));
					buf = buf.subarray(i + delim.length);
					finishPart();
					state = 'after-boundary';
				} else return;
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
	});
}
