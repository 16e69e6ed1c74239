// Shared plumbing for the supagate test emulators: CLI parsing, HS256 JWTs,
// the /_emu/ request log and fault injection, JSON helpers, server lifecycle.
// Node built-ins only.
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export function parseArgs(argv, defaults = {}) {
	const out = { ...defaults };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (!a.startsWith('--')) throw new Error(`unexpected argument: ${a}`);
		let key = a.slice(2), val;
		const eq = key.indexOf('=');
		if (eq >= 0) { val = key.slice(eq + 1); key = key.slice(0, eq); }
		else {
			val = argv[i + 1];
			if (val === undefined || val.startsWith('--')) val = 'true';
			else i++;
		}
		out[key.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = val;
	}
	return out;
}

export function parseBool(v, dflt) {
	if (v === undefined || v === null) return dflt;
	if (typeof v === 'boolean') return v;
	return /^(1|true|yes|on)$/i.test(String(v));
}

export function readSecretFile(file) {
	if (!file) throw new Error('--jwt-secret-file is required');
	return fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
}

// ---- base64url / JWT (HS256) ----
export const b64url = (buf) => Buffer.from(buf).toString('base64url');

export function signJwt(payload, secret) {
	const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
	const body = b64url(JSON.stringify(payload));
	const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
	return `${head}.${body}.${sig}`;
}

// Returns { ok: true, claims } or { ok: false, reason: 'malformed'|'signature'|'expired'|'alg', claims? }.
export function verifyJwt(token, secret, nowSec = Math.floor(Date.now() / 1000)) {
	if (typeof token !== 'string') return { ok: false, reason: 'malformed' };
	const parts = token.split('.');
	if (parts.length !== 3) return { ok: false, reason: 'malformed' };
	let header, claims;
	try {
		header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
		claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
	} catch { return { ok: false, reason: 'malformed' }; }
	if (!header || header.alg !== 'HS256' || !claims || typeof claims !== 'object')
		return { ok: false, reason: 'alg' };
	const want = crypto.createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
	const got = Buffer.from(parts[2], 'base64url');
	if (got.length !== want.length || !crypto.timingSafeEqual(got, want))
		return { ok: false, reason: 'signature' };
	if (typeof claims.exp === 'number' && claims.exp <= nowSec)
		return { ok: false, reason: 'expired', claims };
	return { ok: true, claims };
}

export const uuid = () => crypto.randomUUID();
export const nowSec = () => Math.floor(Date.now() / 1000);
export const isoNow = () => new Date().toISOString();

// ---- HTTP helpers ----
export function sendJson(res, status, body, headers = {}) {
	const data = body === undefined ? '' : JSON.stringify(body);
	res.writeHead(status, {
		'Content-Type': 'application/json; charset=utf-8',
		'Content-Length': Buffer.byteLength(data),
		...headers,
	});
	res.end(data);
}

export function readBody(req, limit = 1 << 20) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		let n = 0;
		req.on('data', (c) => {
			n += c.length;
			if (n > limit) { reject(Object.assign(new Error('body too large'), { tooLarge: true })); req.destroy(); return; }
			chunks.push(c);
		});
		req.on('end', () => resolve(Buffer.concat(chunks)));
		req.on('error', reject);
	});
}

export function headerObject(req) {
	const h = {};
	for (let i = 0; i < req.rawHeaders.length; i += 2) {
		const k = req.rawHeaders[i].toLowerCase();
		h[k] = k in h ? `${h[k]}, ${req.rawHeaders[i + 1]}` : req.rawHeaders[i + 1];
	}
	return h;
}

// Atomic port file: write a temp file, then rename it into place.
export function writePortFile(file, port) {
	const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
	fs.writeFileSync(tmp, `${port}\n`);
	fs.renameSync(tmp, file);
}

// ---- control plane shared by both emulators: request log + faults ----
export class Control {
	constructor() {
		this.requests = [];
		this.faults = [];
		this.maxLog = 10000;
	}

	log(entry) {
		this.requests.push(entry);
		if (this.requests.length > this.maxLog) this.requests.shift();
		return entry;
	}

	setFault(spec) {
		const mode = spec.mode || 'none';
		if (!['down', 'delay', 'status', 'ratelimit', 'none'].includes(mode))
			throw new Error(`unknown fault mode ${mode}`);
		if (mode === 'none') {
			if (spec.path) this.faults = this.faults.filter((f) => f.path !== spec.path);
			else this.faults = [];
			return null;
		}
		const f = {
			mode,
			ms: Number(spec.ms ?? 1000),
			status: Number(spec.status ?? 503),
			retry_after: spec.retry_after ?? 1,
			// status mode: the error code (and message) of the answer, in the
			// service's own error shape; without it, a generic failure body
			error_code: spec.error_code ? String(spec.error_code) : null,
			message: spec.message ? String(spec.message) : null,
			path: spec.path || '',
			count: spec.count === undefined || spec.count === null ? null : Number(spec.count),
			hits: 0,
		};
		// one fault per path prefix: a new one replaces the old one
		this.faults = this.faults.filter((x) => x.path !== f.path);
		this.faults.push(f);
		return f;
	}

	// Picks the fault for this request (longest matching prefix) and uses up one count.
	takeFault(rawPath, svcPath) {
		let best = null;
		for (const f of this.faults) {
			if (f.path && !rawPath.startsWith(f.path) && !svcPath.startsWith(f.path)) continue;
			if (!best || f.path.length > best.path.length) best = f;
		}
		if (!best) return null;
		best.hits++;
		if (best.count !== null) {
			best.count--;
			if (best.count <= 0) this.faults = this.faults.filter((x) => x !== best);
		}
		return best;
	}

	// Handles the common /_emu/ routes; returns true when answered.
	async handle(req, res, url) {
		const p = url.pathname;
		if (p === '/_emu/requests' && req.method === 'GET') {
			sendJson(res, 200, this.requests);
			return true;
		}
		if (p === '/_emu/requests' && req.method === 'DELETE') {
			this.requests = [];
			sendJson(res, 200, { cleared: true });
			return true;
		}
		if (p === '/_emu/fault' && req.method === 'GET') {
			sendJson(res, 200, this.faults);
			return true;
		}
		if (p === '/_emu/fault' && req.method === 'POST') {
			let spec;
			try { spec = JSON.parse((await readBody(req)).toString('utf8') || '{}'); }
			catch { sendJson(res, 400, { message: 'invalid JSON' }); return true; }
			try { sendJson(res, 200, { fault: this.setFault(spec), active: this.faults }); }
			catch (e) { sendJson(res, 400, { message: e.message }); }
			return true;
		}
		return false;
	}
}

// Applies a fault. Returns true when the request was consumed by the fault
// (down, status, ratelimit); for delay it waits and returns false.
export async function applyFault(fault, req, res, renderStatus, renderRateLimit) {
	if (!fault) return false;
	switch (fault.mode) {
	case 'down':
		req.socket.destroy();
		return true;
	case 'delay':
		await new Promise((r) => setTimeout(r, fault.ms));
		return false;
	case 'status':
		renderStatus(res, fault.status, fault);
		return true;
	case 'ratelimit':
		renderRateLimit(res, String(fault.retry_after));
		return true;
	}
	return false;
}

// Starts an http.Server; resolves to { server, port, close() }.
export function listen(handler, { host = '127.0.0.1', port = 0 } = {}) {
	return new Promise((resolve, reject) => {
		const server = http.createServer(handler);
		server.keepAliveTimeout = 5000;
		server.on('error', reject);
		server.listen(Number(port), host, () => {
			const addr = server.address();
			resolve({
				server,
				port: addr.port,
				host,
				url: `http://${host}:${addr.port}`,
				close: () => new Promise((r) => {
					server.close(() => r());
					server.closeAllConnections();
				}),
			});
		});
	});
}

// CLI runner: start, write the port file, exit on SIGTERM/SIGINT.
export async function runCli(start, opts) {
	const inst = await start(opts);
	if (opts.portFile) writePortFile(opts.portFile, inst.port);
	process.stderr.write(`${opts.name}: listening on ${inst.url}\n`);
	const stop = async () => {
		await inst.close();
		process.exit(0);
	};
	process.on('SIGTERM', stop);
	process.on('SIGINT', stop);
	return inst;
}
