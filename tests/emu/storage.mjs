#!/usr/bin/env node
// Supabase Storage HTTP-contract emulator for supagate's tests.
// Objects live on disk under --data-dir/objects, metadata in --data-dir/meta.json.
// See tests/emu/README.md for the endpoints and deliberate simplifications.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import {
	parseArgs, readSecretFile, signJwt, verifyJwt, uuid, nowSec, isoNow,
	sendJson, readBody, headerObject, Control, applyFault, listen, runCli,
} from './lib/common.mjs';
import { boundaryOf, parseMultipart } from './lib/multipart.mjs';

// A Storage error: HTTP 400 (500 stays 500), the real status in body.statusCode.
class SErr extends Error {
	constructor(status, code, message, error) {
		super(message);
		this.status = status; this.code = code; this.error = error || code;
	}
}
const E = {
	noBucket: () => new SErr(404, 'NoSuchBucket', 'Bucket not found', 'Bucket not found'),
	noKey: () => new SErr(404, 'NoSuchKey', 'Object not found', 'not_found'),
	noKeyDownload: () => new SErr(404, 'NoSuchKey', 'The resource was not found', 'Not found'),
	exists: () => new SErr(409, 'ResourceAlreadyExists', 'The resource already exists', 'Duplicate'),
	bucketExists: () => new SErr(409, 'BucketAlreadyExists', 'The resource already exists', 'Duplicate'),
	notEmpty: () => new SErr(409, 'ResourceNotEmpty', 'The bucket you tried to delete is not empty'),
	rls: () => new SErr(403, 'AccessDenied', 'new row violates row-level security policy', 'Unauthorized'),
	jwt: (msg) => new SErr(403, 'AccessDenied', msg, 'Unauthorized'),
	invalidJwt: (msg) => new SErr(400, 'InvalidJWT', msg),
	tooLarge: () => new SErr(413, 'EntityTooLarge', 'The object exceeded the maximum allowed size', 'Payload too large'),
	mime: (t) => new SErr(415, 'InvalidMimeType', `mime type ${t} is not supported`, 'invalid_mime_type'),
	range: () => new SErr(400, 'InvalidRange', 'invalid range provided', 'invalid_range'),
	badBucketName: () => new SErr(400, 'InvalidBucketName', 'Bucket name invalid', 'Invalid Input'),
	invalid: (msg) => new SErr(400, 'InvalidRequest', msg),
	key: (k) => new SErr(400, 'InvalidKey', `Invalid key: ${k}`),
	signature: () => new SErr(400, 'InvalidSignature', 'Invalid signature'),
	notFound: () => new SErr(404, 'NotFound', 'Route not found', 'Not Found'),
};

function parseSize(v) {
	if (v === null || v === undefined || v === '') return null;
	if (typeof v === 'number') return v;
	const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?$/i.exec(String(v).trim());
	if (!m) throw new SErr(400, 'InvalidRequest', 'Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B');
	const mul = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9 }[(m[2] || 'B').toUpperCase()];
	return Math.floor(Number(m[1]) * mul);
}

function mimeAllowed(allowed, type) {
	if (!allowed || !allowed.length) return true;
	const base = String(type || '').split(';')[0].trim().toLowerCase();
	return allowed.some((a) => {
		a = a.toLowerCase();
		if (a.endsWith('/*')) return base.startsWith(a.slice(0, -1));
		return a === base || a === String(type).toLowerCase();
	});
}

const httpDate = (iso) => new Date(iso).toUTCString();

export function createStorage(opts) {
	const secret = opts.secret ?? readSecretFile(opts.jwtSecretFile);
	const dataDir = path.resolve(opts.dataDir || fs.mkdtempSync('/tmp/storage-emu-'));
	const objDir = path.join(dataDir, 'objects');
	const tmpDir = path.join(dataDir, 'tmp');
	fs.mkdirSync(objDir, { recursive: true });
	fs.mkdirSync(tmpDir, { recursive: true });
	const metaFile = path.join(dataDir, 'meta.json');
	const cfg = {
		file_size_limit: Number(opts.fileSizeLimit ?? 50 * 1024 * 1024),
		upload_url_expires_in: Number(opts.uploadUrlExpiresIn ?? 7200),
		bucket_admin_roles: String(opts.bucketAdminRoles ?? 'service_role,authenticated').split(','),
	};
	const control = new Control();
	const st = { buckets: {}, objects: {} };
	const counters = { uploads: 0, downloads: 0, not_modified: 0, partial: 0, signed_urls: 0, signed_downloads: 0 };
	if (fs.existsSync(metaFile)) {
		try { Object.assign(st, JSON.parse(fs.readFileSync(metaFile, 'utf8'))); } catch { /* start empty */ }
	}
	const persist = () => {
		const tmp = `${metaFile}.tmp`;
		fs.writeFileSync(tmp, JSON.stringify(st));
		fs.renameSync(tmp, metaFile);
	};
	const okey = (b, n) => `${b}/${n}`;

	// ---------- identity and policy ----------
	function tokenOf(req, url) {
		const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization || '');
		if (m) return m[1];
		return req.headers.apikey || url.searchParams.get('apikey') || null;
	}
	function identify(req, url) {
		const t = tokenOf(req, url);
		if (!t) throw E.jwt('Missing authorization header');
		const v = verifyJwt(t, secret);
		if (!v.ok) {
			if (v.reason === 'expired') throw E.jwt('"exp" claim timestamp check failed');
			if (v.reason === 'signature') throw E.jwt('signature verification failed');
			throw E.jwt('Invalid Compact JWS');
		}
		const role = v.claims.role || 'anon';
		return { role, sub: role === 'authenticated' ? v.claims.sub : null, claims: v.claims };
	}
	const isService = (id) => id.role === 'service_role';
	function canRead(id, bucket, obj) {
		if (isService(id) || bucket.public) return true;
		if (id.role !== 'authenticated') return false;
		return !obj || !obj.owner || obj.owner === id.sub;
	}
	function canWrite(id, bucket, existing) {
		if (isService(id)) return true;
		if (id.role !== 'authenticated') return false;
		return !existing || !existing.owner || existing.owner === id.sub;
	}
	function needBucket(name) {
		const b = st.buckets[name];
		if (!b) throw E.noBucket();
		return b;
	}
	function bucketAdmin(id) {
		if (!cfg.bucket_admin_roles.includes(id.role)) throw E.rls();
	}
	function checkKey(name) {
		if (!name || name.includes('\0') || name.split('/').some((s) => s === '..' || s === '.'))
			throw E.key(name);
	}

	// ---------- JSON body helper (logged) ----------
	async function jsonBody(req) {
		const buf = await readBody(req);
		const text = buf.toString('utf8');
		if (req.emuEntry) req.emuEntry.body = text || null;
		if (!text) return {};
		try { return JSON.parse(text) || {}; } catch { throw E.invalid('Body is not valid JSON'); }
	}

	// ---------- buckets ----------
	const bucketJson = (b) => ({
		id: b.id, name: b.name, owner: b.owner, public: b.public, type: 'STANDARD',
		file_size_limit: b.file_size_limit, allowed_mime_types: b.allowed_mime_types,
		created_at: b.created_at, updated_at: b.updated_at,
	});
	async function createBucket(req, id) {
		bucketAdmin(id);
		const b = await jsonBody(req);
		const name = b.name || b.id;
		if (!name || typeof name !== 'string' || name.includes('/') || name.length > 100 || name.trim() !== name)
			throw E.badBucketName();
		if (st.buckets[b.id || name]) throw E.bucketExists();
		const t = isoNow();
		st.buckets[b.id || name] = {
			id: b.id || name, name, owner: id.sub || '', public: !!b.public,
			file_size_limit: parseSize(b.file_size_limit),
			allowed_mime_types: Array.isArray(b.allowed_mime_types) && b.allowed_mime_types.length ? b.allowed_mime_types : null,
			created_at: t, updated_at: t,
		};
		persist();
		return [200, { name }];
	}
	async function updateBucket(req, id, name) {
		bucketAdmin(id);
		const bk = needBucket(name);
		const b = await jsonBody(req);
		if (b.public !== undefined) bk.public = !!b.public;
		if (b.file_size_limit !== undefined) bk.file_size_limit = parseSize(b.file_size_limit);
		if (b.allowed_mime_types !== undefined)
			bk.allowed_mime_types = Array.isArray(b.allowed_mime_types) && b.allowed_mime_types.length ? b.allowed_mime_types : null;
		bk.updated_at = isoNow();
		persist();
		return [200, { message: 'Successfully updated' }];
	}
	function removeObject(key) {
		const o = st.objects[key];
		if (!o) return;
		delete st.objects[key];
		fs.rm(path.join(objDir, o.version), { force: true }, () => {});
	}
	function emptyBucket(id, name) {
		bucketAdmin(id);
		needBucket(name);
		for (const k of Object.keys(st.objects)) if (st.objects[k].bucket_id === name) removeObject(k);
		persist();
		return [200, { message: 'Empty bucket has been queued. Completion may take up to an hour.' }];
	}
	function deleteBucket(id, name) {
		bucketAdmin(id);
		needBucket(name);
		if (Object.values(st.objects).some((o) => o.bucket_id === name)) throw E.notEmpty();
		delete st.buckets[name];
		persist();
		return [200, { message: 'Successfully deleted' }];
	}

	// ---------- objects ----------
	const rowJson = (o) => ({
		bucket_id: o.bucket_id, name: o.name, owner: o.owner || '', owner_id: o.owner || '',
		version: o.version, id: o.id, updated_at: o.updated_at, created_at: o.created_at,
		last_accessed_at: o.last_accessed_at, metadata: o.metadata, user_metadata: o.user_metadata ?? null,
	});

	function drain(req, res) {
		res.setHeader('Connection', 'close');
		req.resume();
	}

	// Streams the body (raw or multipart) into a temp file; returns object fields.
	async function receive(req, limit, bucket) {
		const ctype = req.headers['content-type'] || '';
		const tmp = path.join(tmpDir, uuid());
		const md5 = crypto.createHash('md5');
		let size = 0, tooBig = false;
		const open = () => {
			const ws = fs.createWriteStream(tmp);
			const origWrite = ws.write.bind(ws);
			ws.write = (chunk, ...rest) => {
				size += chunk.length;
				if (size > limit) { tooBig = true; return true; }
				md5.update(chunk);
				return origWrite(chunk, ...rest);
			};
			return ws;
		};
		const finished = (ws) => new Promise((resolve, reject) => {
			if (ws.closed) return resolve();
			ws.on('close', resolve);
			ws.on('error', reject);
		});
		let mimetype, cacheControl, userMeta = null;
		try {
			if (/^multipart\/form-data/i.test(ctype)) {
				const boundary = boundaryOf(ctype);
				if (!boundary) throw E.invalid('Missing multipart boundary');
				let ws = null;
				const { fields, file } = await parseMultipart(req, boundary, { openFile: () => (ws = open()) });
				if (!file) throw E.invalid('No content provided');
				await finished(ws);
				mimetype = fields.contentType || file.contentType || 'application/octet-stream';
				cacheControl = fields.cacheControl ? `max-age=${fields.cacheControl}` : 'no-cache';
				if (fields.metadata) { try { userMeta = JSON.parse(fields.metadata); } catch { throw E.invalid('Invalid metadata'); } }
			} else {
				mimetype = ctype || 'application/octet-stream';
				cacheControl = req.headers['cache-control'] || 'no-cache';
				if (req.headers['x-metadata']) {
					try { userMeta = JSON.parse(Buffer.from(req.headers['x-metadata'], 'base64').toString('utf8')); }
					catch { throw E.invalid('Invalid metadata'); }
				}
				if (!mimeAllowed(bucket.allowed_mime_types, mimetype)) throw E.mime(mimetype);
				const ws = open();
				await pipeline(req, ws);
			}
			if (tooBig) throw E.tooLarge();
			if (!mimeAllowed(bucket.allowed_mime_types, mimetype)) throw E.mime(mimetype);
		} catch (e) {
			fs.rm(tmp, { force: true }, () => {});
			if (e instanceof SErr) throw e;
			throw E.invalid(e.message);
		}
		return { tmp, size, eTag: `"${md5.digest('hex')}"`, mimetype, cacheControl, userMeta };
	}

	async function upload(req, res, { bucketName, name, id, upsert, owner }) {
		checkKey(name);
		const bucket = needBucket(bucketName);
		const key = okey(bucketName, name);
		const existing = st.objects[key];
		if (!canWrite(id, bucket, existing)) { drain(req, res); throw E.rls(); }
		if (existing && !upsert) { drain(req, res); throw E.exists(); }
		const limit = Math.min(bucket.file_size_limit ?? Infinity, cfg.file_size_limit);
		const clen = Number(req.headers['content-length']);
		if (Number.isFinite(clen) && clen > limit && !/^multipart/i.test(req.headers['content-type'] || '')) {
			drain(req, res);
			throw E.tooLarge();
		}
		let got;
		try { got = await receive(req, limit, bucket); }
		catch (e) { drain(req, res); throw e; }
		if (req.emuEntry) req.emuEntry.body_bytes = got.size;
		// a concurrent upload may have won meanwhile
		const now = st.objects[key];
		if (now && !upsert) { fs.rm(got.tmp, { force: true }, () => {}); throw E.exists(); }
		const o = commitObject(bucketName, name, got, owner ?? id.sub ?? null);
		return [200, { Id: o.id, Key: key }];
	}

	// Moves a received temp file into place as the object's new version.
	function commitObject(bucketName, name, got, owner) {
		const key = okey(bucketName, name);
		const now = st.objects[key];
		const version = uuid();
		fs.renameSync(got.tmp, path.join(objDir, version));
		if (now) fs.rm(path.join(objDir, now.version), { force: true }, () => {});
		const t = isoNow();
		const o = {
			id: now ? now.id : uuid(), bucket_id: bucketName, name, owner, version,
			created_at: now ? now.created_at : t, updated_at: t, last_accessed_at: t,
			metadata: {
				eTag: got.eTag, size: got.size, mimetype: got.mimetype, cacheControl: got.cacheControl,
				lastModified: new Date(Math.floor(Date.now() / 1000) * 1000).toISOString(), contentLength: got.size,
				httpStatusCode: 200,
			},
			user_metadata: got.userMeta,
		};
		st.objects[key] = o;
		persist();
		counters.uploads++;
		return o;
	}

	function serveObject(req, res, url, obj, { expires } = {}) {
		const m = obj.metadata;
		const headers = {
			'Accept-Ranges': 'bytes', 'Content-Type': m.mimetype, ETag: m.eTag,
			'Last-Modified': httpDate(m.lastModified), 'X-Robots-Tag': 'none',
		};
		if (expires) headers.Expires = new Date(expires * 1000).toUTCString();
		else headers['Cache-Control'] = m.cacheControl;
		if (url.searchParams.has('download')) {
			const fname = url.searchParams.get('download') || obj.name.split('/').pop();
			headers['Content-Disposition'] = `attachment; filename=${encodeURIComponent(fname)}; filename*=UTF-8''${encodeURIComponent(fname)}`;
		}
		const inm = req.headers['if-none-match'];
		const ims = req.headers['if-modified-since'];
		const notModified = inm
			? inm.split(',').map((s) => s.trim().replace(/^W\//, '')).some((t) => t === '*' || t === m.eTag)
			: ims ? Date.parse(ims) >= Date.parse(m.lastModified) : false;
		if (notModified) {
			counters.not_modified++;
			res.writeHead(304, headers);
			res.end();
			return;
		}
		const size = m.size;
		let start = 0, end = size - 1, status = 200;
		const range = req.headers.range;
		if (range && !range.includes(',')) {
			const r = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
			if (!r || (r[1] === '' && r[2] === '')) throw E.range();
			if (r[1] === '') { start = Math.max(0, size - Number(r[2])); }
			else { start = Number(r[1]); if (r[2] !== '') end = Math.min(Number(r[2]), size - 1); }
			if (start >= size || start > end) {
				res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
				res.end();
				return;
			}
			status = 206;
			headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
			counters.partial++;
		}
		headers['Content-Length'] = size === 0 ? 0 : end - start + 1;
		obj.last_accessed_at = isoNow();
		counters.downloads++;
		res.writeHead(status, headers);
		if (req.method === 'HEAD' || size === 0) { res.end(); return; }
		const rs = fs.createReadStream(path.join(objDir, obj.version), { start, end });
		rs.on('error', () => res.destroy());
		rs.pipe(res);
	}

	function readable(id, bucketName, name, { download = false } = {}) {
		const bucket = needBucket(bucketName);
		const obj = st.objects[okey(bucketName, name)];
		if (!obj || !canRead(id, bucket, obj)) throw download ? E.noKeyDownload() : E.noKey();
		return obj;
	}

	function infoJson(o) {
		return {
			id: o.id, name: o.name, version: o.version, bucket_id: o.bucket_id,
			size: o.metadata.size, content_type: o.metadata.mimetype, cache_control: o.metadata.cacheControl,
			etag: o.metadata.eTag, metadata: o.user_metadata ?? {}, last_modified: o.metadata.lastModified,
			created_at: o.created_at,
		};
	}

	async function list(req, id, bucketName) {
		const bucket = needBucket(bucketName);
		const b = await jsonBody(req);
		let prefix = typeof b.prefix === 'string' ? b.prefix.replace(/^\/+/, '') : '';
		if (prefix && !prefix.endsWith('/')) prefix += '/';
		const search = typeof b.search === 'string' ? b.search.toLowerCase() : '';
		const limit = Number(b.limit ?? 100), offset = Number(b.offset ?? 0);
		const col = b.sortBy?.column || 'name';
		if (!['name', 'updated_at', 'created_at', 'last_accessed_at'].includes(col)) throw E.invalid(`Invalid sort column ${col}`);
		const desc = String(b.sortBy?.order || 'asc').toLowerCase() === 'desc';
		const items = new Map();
		for (const o of Object.values(st.objects)) {
			if (o.bucket_id !== bucketName || !o.name.startsWith(prefix)) continue;
			if (!canRead(id, bucket, o)) continue;
			const rest = o.name.slice(prefix.length);
			const slash = rest.indexOf('/');
			const entry = slash >= 0 ? rest.slice(0, slash) : rest;
			if (search && !entry.toLowerCase().startsWith(search)) continue;
			if (slash >= 0) {
				if (!items.has(`d:${entry}`)) items.set(`d:${entry}`, { name: entry, id: null, updated_at: null, created_at: null, last_accessed_at: null, metadata: null });
			} else {
				items.set(`f:${entry}`, { name: entry, id: o.id, updated_at: o.updated_at, created_at: o.created_at, last_accessed_at: o.last_accessed_at, metadata: o.metadata, user_metadata: o.user_metadata ?? null });
			}
		}
		const arr = [...items.values()].sort((x, y) => {
			const a = x[col], c = y[col];
			let d;
			if (a === c) d = x.name < y.name ? -1 : x.name > y.name ? 1 : 0;
			else if (a === null) d = -1;
			else if (c === null) d = 1;
			else d = a < c ? -1 : 1;
			return desc ? -d : d;
		});
		return [200, arr.slice(offset, offset + limit)];
	}

	async function moveOrCopy(req, id, copy) {
		const b = await jsonBody(req);
		const srcBucket = b.bucketId, dstBucket = b.destinationBucket || b.bucketId;
		if (!srcBucket || !b.sourceKey || !b.destinationKey) throw E.invalid('bucketId, sourceKey and destinationKey are required');
		checkKey(b.destinationKey);
		const sb = needBucket(srcBucket), db = needBucket(dstBucket);
		const src = st.objects[okey(srcBucket, b.sourceKey)];
		if (!src || !canRead(id, sb, src)) throw E.noKey();
		if (!copy && !canWrite(id, sb, src)) throw E.rls();
		const dkey = okey(dstBucket, b.destinationKey);
		const dst = st.objects[dkey];
		const upsert = String(req.headers['x-upsert']) === 'true';
		if (dst && !(copy && upsert)) throw E.exists();
		if (!canWrite(id, db, dst)) throw E.rls();
		if (!mimeAllowed(db.allowed_mime_types, src.metadata.mimetype)) throw E.mime(src.metadata.mimetype);
		const t = isoNow();
		if (copy) {
			const version = uuid();
			fs.copyFileSync(path.join(objDir, src.version), path.join(objDir, version));
			if (dst) fs.rm(path.join(objDir, dst.version), { force: true }, () => {});
			const meta = { ...src.metadata };
			const o = {
				...src, id: uuid(), bucket_id: dstBucket, name: b.destinationKey, version, owner: id.sub ?? null,
				created_at: t, updated_at: t, last_accessed_at: t, metadata: meta,
				user_metadata: b.copyMetadata === false ? (b.metadata ?? null) : src.user_metadata,
			};
			st.objects[dkey] = o;
			persist();
			return [200, { Id: o.id, Key: dkey }];
		}
		delete st.objects[okey(srcBucket, b.sourceKey)];
		st.objects[dkey] = { ...src, bucket_id: dstBucket, name: b.destinationKey, updated_at: t };
		persist();
		return [200, { message: 'Successfully moved' }];
	}

	async function removeMany(req, id, bucketName) {
		const bucket = needBucket(bucketName);
		const b = await jsonBody(req);
		if (!Array.isArray(b.prefixes) || b.prefixes.length < 1) throw E.invalid('body must have required property \'prefixes\'');
		const out = [];
		for (const p of b.prefixes) {
			const key = okey(bucketName, String(p));
			const o = st.objects[key];
			if (!o || !canRead(id, bucket, o) || !canWrite(id, bucket, o)) continue;
			out.push(rowJson(o));
			removeObject(key);
		}
		persist();
		return [200, out];
	}

	function removeOne(id, bucketName, name) {
		const bucket = needBucket(bucketName);
		const key = okey(bucketName, name);
		const o = st.objects[key];
		if (!o || !canRead(id, bucket, o)) throw E.noKey();
		if (!canWrite(id, bucket, o)) throw E.rls();
		removeObject(key);
		persist();
		return [200, { message: 'Successfully deleted' }];
	}

	function expiresInOf(v) {
		const n = Number(v);
		if (!Number.isInteger(n) || n < 1) throw E.invalid('expiresIn must be an integer >= 1');
		return n;
	}
	function signDownload(bucketName, name, expiresIn, transform) {
		const iat = nowSec();
		const claims = { url: okey(bucketName, name), iat, exp: iat + expiresIn };
		if (transform) claims.transformations = transform;
		counters.signed_urls++;
		return `/object/sign/${okey(bucketName, name)}?token=${signJwt(claims, secret)}`;
	}
	async function sign(req, id, bucketName, name) {
		const b = await jsonBody(req);
		const exp = expiresInOf(b.expiresIn);
		readable(id, bucketName, name);
		return [200, { signedURL: signDownload(bucketName, name, exp, b.transform) }];
	}
	async function signMany(req, id, bucketName) {
		const b = await jsonBody(req);
		const exp = expiresInOf(b.expiresIn);
		if (!Array.isArray(b.paths)) throw E.invalid('body must have required property \'paths\'');
		const bucket = needBucket(bucketName);
		return [200, b.paths.map((p) => {
			const o = st.objects[okey(bucketName, String(p))];
			if (!o || !canRead(id, bucket, o))
				return { error: 'Either the object does not exist or you do not have access to it', path: p, signedURL: null };
			return { error: null, path: p, signedURL: signDownload(bucketName, String(p), exp) };
		})];
	}
	function checkUrlToken(url, bucketName, name) {
		const t = url.searchParams.get('token');
		if (!t) throw new SErr(400, 'InvalidRequest', 'querystring must have required property \'token\'', 'Bad Request');
		const v = verifyJwt(t, secret);
		if (!v.ok) throw E.invalidJwt(v.reason === 'expired' ? 'jwt expired' : v.reason === 'signature' ? 'invalid signature' : 'jwt malformed');
		if (v.claims.url !== okey(bucketName, name)) throw E.signature();
		return v.claims;
	}
	async function signUpload(req, id, bucketName, name) {
		await jsonBody(req);
		checkKey(name);
		const bucket = needBucket(bucketName);
		const existing = st.objects[okey(bucketName, name)];
		const upsert = String(req.headers['x-upsert']) === 'true';
		if (!canWrite(id, bucket, existing)) throw E.rls();
		if (existing && !upsert) throw E.exists();
		const iat = nowSec();
		const token = signJwt({ url: okey(bucketName, name), owner: id.sub ?? undefined, upsert, iat, exp: iat + cfg.upload_url_expires_in }, secret);
		return [200, { url: `/object/upload/sign/${okey(bucketName, name)}?token=${token}`, token }];
	}

	// ---------- resumable uploads (TUS 1.0.0, wire-contract §4.5) ----------
	// Uploads in progress: id -> {id, bucket, name, length, offset, contentType,
	// cacheControl, userMeta, upsert, owner, creator, tmp, expires, writer}.
	const tus = new Map();
	const TUS_PATH = '/upload/resumable';
	const TUS_VERSION = '1.0.0';
	const TUS_EXTENSIONS = 'creation,creation-with-upload,termination,expiration';
	const TUS_LIFETIME_MS = 24 * 3600 * 1000;
	const tusErr = {
		version: () => new SErr(412, 'InvalidRequest', 'Unsupported version', 'Precondition Failed'),
		length: () => new SErr(400, 'InvalidRequest', 'Upload-Length or Upload-Defer-Length header required', 'Bad Request'),
		metadata: (m) => new SErr(400, 'InvalidRequest', m, 'Bad Request'),
		notFound: () => new SErr(404, 'NotFound', 'The file for this url was not found', 'Not Found'),
		offset: () => new SErr(409, 'InvalidRequest', 'Upload-Offset conflict', 'Conflict'),
		locked: () => new SErr(409, 'InvalidRequest', 'Another request is writing to this upload', 'Conflict'),
		ctype: () => new SErr(415, 'InvalidRequest', 'Content-Type must be application/offset+octet-stream', 'Unsupported Media Type'),
		exceeded: () => new SErr(413, 'EntityTooLarge', 'Upload-Length exceeded', 'Payload too large'),
		gone: () => new SErr(410, 'InvalidRequest', 'The upload has expired', 'Gone'),
	};
	const first = (v) => (v === undefined ? undefined : String(v).split(',')[0].trim());

	// "key base64,key base64,key" -> {key: value}
	function parseUploadMetadata(h) {
		const out = {};
		if (!h) return out;
		for (const pair of String(h).split(',')) {
			const [k, v, extra] = pair.trim().split(/\s+/);
			if (!k || extra !== undefined || !/^[\x21-\x7e]+$/.test(k) || k.includes(','))
				throw tusErr.metadata('Upload-Metadata is invalid');
			if (v !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(v))
				throw tusErr.metadata('Upload-Metadata is invalid');
			out[k] = v === undefined ? '' : Buffer.from(v, 'base64').toString('utf8');
		}
		return out;
	}

	// The absolute upload URL, as Storage builds it behind a proxy: from
	// X-Forwarded-Proto/-Host/-Port/-Prefix, else the request's own Host and
	// the /storage/v1 prefix the request arrived with.
	function tusLocation(req, url, id) {
		const proto = first(req.headers['x-forwarded-proto']) || 'http';
		let host = first(req.headers['x-forwarded-host']) || req.headers.host || 'localhost';
		const fport = first(req.headers['x-forwarded-port']);
		if (fport && !/:\d+$/.test(host) && !host.endsWith(']')) host += `:${fport}`;
		let prefix = req.headers['x-forwarded-prefix'];
		if (prefix === undefined) prefix = url.pathname.startsWith('/storage/v1/') ? '/storage/v1' : '';
		prefix = String(prefix).replace(/\/+$/, '');
		const signed = url.pathname.replace(/\/+$/, '').endsWith(`${TUS_PATH}/sign`) ? '/sign' : '';
		return `${proto}://${host}${prefix}${TUS_PATH}${signed}/${id}`;
	}

	function tusSend(res, status, headers = {}) {
		res.writeHead(status, { 'Tus-Resumable': TUS_VERSION, 'Content-Length': 0, ...headers });
		res.end();
	}

	// Who is asking: the bearer token, or for the /sign variant the
	// x-signature token of POST /object/upload/sign.
	function tusIdentity(req, url, signed) {
		if (!signed) return { id: identify(req, url), claims: null };
		const t = req.headers['x-signature'];
		if (!t) throw new SErr(400, 'InvalidSignature', 'Missing x-signature header');
		const v = verifyJwt(t, secret);
		if (!v.ok) throw E.invalidJwt(v.reason === 'expired' ? 'jwt expired' : v.reason === 'signature' ? 'invalid signature' : 'jwt malformed');
		return { id: { role: 'service_role', sub: v.claims.owner ?? null }, claims: v.claims };
	}

	function tusLookup(rawId, who, claims) {
		const u = tus.get(rawId);
		if (!u) throw tusErr.notFound();
		if (claims) {
			if (claims.url !== okey(u.bucket, u.name)) throw E.signature();
		} else if (who.role !== 'service_role' && who.sub !== u.creator) {
			throw tusErr.notFound();
		}
		if (Date.now() > u.expires) {
			tus.delete(rawId);
			fs.rm(u.tmp, { force: true }, () => {});
			throw tusErr.gone();
		}
		return u;
	}

	async function tusCreate(req, res, url, who, claims) {
		if (req.headers['upload-defer-length'] !== undefined) throw tusErr.length();
		const lenH = req.headers['upload-length'];
		if (lenH === undefined || !/^\d+$/.test(lenH)) throw tusErr.length();
		const length = Number(lenH);
		const md = parseUploadMetadata(req.headers['upload-metadata']);
		if (!md.bucketName) throw tusErr.metadata('metadata bucketName is required');
		if (!md.objectName) throw tusErr.metadata('metadata objectName is required');
		checkKey(md.objectName);
		const bucket = needBucket(md.bucketName);
		const key = okey(md.bucketName, md.objectName);
		if (claims && claims.url !== key) throw E.signature();
		const upsert = claims ? !!claims.upsert : String(req.headers['x-upsert']) === 'true';
		const existing = st.objects[key];
		if (!canWrite(who, bucket, existing)) throw E.rls();
		if (existing && !upsert) throw E.exists();
		const limit = Math.min(bucket.file_size_limit ?? Infinity, cfg.file_size_limit);
		if (length > limit) throw E.tooLarge();
		const contentType = md.contentType || 'application/octet-stream';
		if (!mimeAllowed(bucket.allowed_mime_types, contentType)) throw E.mime(contentType);
		let userMeta = null;
		if (md.metadata) { try { userMeta = JSON.parse(md.metadata); } catch { throw E.invalid('Invalid metadata'); } }
		const version = uuid();
		const id = Buffer.from(`${md.bucketName}/${md.objectName}/${version}`).toString('base64url');
		const u = {
			id, bucket: md.bucketName, name: md.objectName, length, offset: 0, contentType,
			cacheControl: md.cacheControl ? (/^\d+$/.test(md.cacheControl) ? `max-age=${md.cacheControl}` : md.cacheControl) : 'no-cache',
			userMeta, upsert, owner: claims ? (claims.owner ?? null) : who.sub ?? null, creator: who.sub ?? null,
			tmp: path.join(tmpDir, `tus-${version}`), expires: Date.now() + TUS_LIFETIME_MS, writer: null,
		};
		fs.writeFileSync(u.tmp, '');
		tus.set(id, u);
		const headers = {
			Location: tusLocation(req, url, id),
			'Upload-Expires': new Date(u.expires).toUTCString(),
		};
		// creation-with-upload: the POST may carry the first bytes
		if (/^application\/offset\+octet-stream/i.test(req.headers['content-type'] || '')) {
			await tusWrite(req, res, u);
			headers['Upload-Offset'] = String(u.offset);
			if (u.offset === u.length) await tusFinish(u);
		} else if (length === 0) {
			await tusFinish(u);
		} else {
			req.resume();
		}
		tusSend(res, 201, headers);
	}

	// Streams the request body into the upload's file at its offset, with
	// backpressure. Bytes that arrived before a client abort stay written
	// and count toward the offset, as tus servers keep partial chunks.
	function tusWrite(req, res, u) {
		return new Promise((resolve, reject) => {
			const start = u.offset;
			const ws = fs.createWriteStream(u.tmp, { flags: 'r+', start });
			let queued = 0, over = false, done = false;
			const writer = u.writer = { req };
			const finish = () => {
				if (done) return;
				done = true;
				ws.end(() => {
					if (u.writer === writer) u.writer = null;
					u.offset = start + queued;
					if (req.emuEntry) req.emuEntry.body_bytes = queued;
					if (over) reject(tusErr.exceeded());
					else resolve();
				});
			};
			ws.on('error', (e) => {
				if (done) return;
				done = true;
				if (u.writer === writer) u.writer = null;
				reject(e);
			});
			req.on('data', (c) => {
				if (done) return;
				if (start + queued + c.length > u.length) {
					c = c.subarray(0, u.length - start - queued);
					over = true;
				}
				queued += c.length;
				if (c.length && !ws.write(c)) { req.pause(); ws.once('drain', () => req.resume()); }
				if (over) { drain(req, res); finish(); }
			});
			req.on('end', finish);
			req.on('aborted', finish);
			req.on('close', finish);
			req.on('error', finish);
		});
	}

	async function tusFinish(u) {
		tus.delete(u.id);
		const bucket = st.buckets[u.bucket];
		if (!bucket) { fs.rm(u.tmp, { force: true }, () => {}); throw E.noBucket(); }
		const existing = st.objects[okey(u.bucket, u.name)];
		if (existing && !u.upsert) { fs.rm(u.tmp, { force: true }, () => {}); throw E.exists(); }
		const md5 = crypto.createHash('md5');
		await pipeline(fs.createReadStream(u.tmp), md5);
		commitObject(u.bucket, u.name, {
			tmp: u.tmp, size: u.length, eTag: `"${md5.digest('hex')}"`, mimetype: u.contentType,
			cacheControl: u.cacheControl, userMeta: u.userMeta,
		}, u.owner);
	}

	async function tusPatch(req, res, u) {
		if (!/^application\/offset\+octet-stream/i.test(req.headers['content-type'] || '')) throw tusErr.ctype();
		const off = req.headers['upload-offset'];
		if (off === undefined || !/^\d+$/.test(off)) throw tusErr.metadata('Upload-Offset header required');
		if (u.writer) throw tusErr.locked();
		if (Number(off) !== u.offset) throw tusErr.offset();
		const clen = req.headers['content-length'];
		if (clen !== undefined && u.offset + Number(clen) > u.length) throw tusErr.exceeded();
		await tusWrite(req, res, u);
		if (res.destroyed || req.destroyed && !req.complete) return;
		if (u.offset === u.length) await tusFinish(u);
		tusSend(res, 204, { 'Upload-Offset': String(u.offset), 'Upload-Expires': new Date(u.expires).toUTCString() });
	}

	async function tusRoute(req, res, url, p) {
		const m = req.method;
		const rest = p.slice(TUS_PATH.length).replace(/^\/+/, '');
		const signed = rest === 'sign' || rest.startsWith('sign/');
		const rawId = (signed ? rest.slice(4) : rest).replace(/^\/+|\/+$/g, '');
		if (m === 'OPTIONS') {
			tusSend(res, 204, {
				'Tus-Version': TUS_VERSION, 'Tus-Extension': TUS_EXTENSIONS,
				'Tus-Max-Size': String(cfg.file_size_limit),
				'Access-Control-Allow-Methods': 'POST, GET, HEAD, PATCH, DELETE, OPTIONS',
			});
			return;
		}
		if (req.headers['tus-resumable'] !== TUS_VERSION) {
			res.setHeader('Tus-Version', TUS_VERSION);
			throw tusErr.version();
		}
		const { id: who, claims } = tusIdentity(req, url, signed);
		if (!rawId) {
			if (m === 'POST') return tusCreate(req, res, url, who, claims);
			throw E.notFound();
		}
		if (rawId.includes('/')) throw tusErr.notFound();
		const u = tusLookup(rawId, who, claims);
		if (m === 'HEAD') {
			res.writeHead(200, {
				'Tus-Resumable': TUS_VERSION, 'Cache-Control': 'no-store',
				'Upload-Offset': String(u.offset), 'Upload-Length': String(u.length),
				'Upload-Expires': new Date(u.expires).toUTCString(),
			});
			res.end();
			return;
		}
		if (m === 'PATCH') return tusPatch(req, res, u);
		if (m === 'DELETE') {
			if (u.writer) throw tusErr.locked();
			tus.delete(u.id);
			fs.rm(u.tmp, { force: true }, () => {});
			tusSend(res, 204);
			return;
		}
		throw E.notFound();
	}

	function tusError(req, res, e) {
		if (!(e instanceof SErr)) {
			process.stderr.write(`storage emulator: ${e.stack || e}\n`);
			e = new SErr(500, 'InternalError', 'Internal server error', 'Internal Server Error');
		}
		if (req.method !== 'HEAD' && !req.complete) drain(req, res);
		const body = req.method === 'HEAD' ? undefined
			: { statusCode: String(e.status), code: e.code, error: e.error, message: e.message };
		const data = body === undefined ? '' : JSON.stringify(body);
		res.writeHead(e.status, {
			'Tus-Resumable': TUS_VERSION, 'Cache-Control': 'no-store',
			'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(data),
		});
		res.end(data);
	}

	// ---------- routing ----------
	function splitBucketPath(rest) {
		const i = rest.indexOf('/');
		if (i < 0) return [rest, ''];
		return [rest.slice(0, i), rest.slice(i + 1)];
	}

	async function route(req, res, url, p) {
		const m = req.method;
		let rest;
		const dec = (s) => { try { return decodeURIComponent(s); } catch { throw E.invalid('bad path encoding'); } };

		if (p === '/status' || p === '/health') return [200, { status: 'ok' }];
		// --- no-auth routes
		if ((rest = after(p, '/object/public/')) !== null && (m === 'GET' || m === 'HEAD')) {
			const [bn, name] = splitBucketPath(rest);
			const bucket = needBucket(dec(bn));
			const obj = st.objects[okey(dec(bn), dec(name))];
			if (!bucket.public || !obj) throw E.noKeyDownload();
			serveObject(req, res, url, obj);
			return null;
		}
		if ((rest = after(p, '/object/info/public/')) !== null && m === 'GET') {
			const [bn, name] = splitBucketPath(rest);
			const bucket = needBucket(dec(bn));
			const obj = st.objects[okey(dec(bn), dec(name))];
			if (!bucket.public || !obj) throw E.noKey();
			return [200, infoJson(obj), { ETag: obj.metadata.eTag }];
		}
		if ((rest = after(p, '/object/sign/')) !== null && (m === 'GET' || m === 'HEAD')) {
			const [bn, name] = splitBucketPath(rest);
			const claims = checkUrlToken(url, dec(bn), dec(name));
			const obj = st.objects[okey(dec(bn), dec(name))];
			if (!obj) throw E.noKeyDownload();
			counters.signed_downloads++;
			serveObject(req, res, url, obj, { expires: claims.exp });
			return null;
		}
		if ((rest = after(p, '/object/upload/sign/')) !== null && m === 'PUT') {
			const [bn, name] = splitBucketPath(rest);
			let claims;
			try { claims = checkUrlToken(url, dec(bn), dec(name)); } catch (e) { drain(req, res); throw e; }
			return upload(req, res, {
				bucketName: dec(bn), name: dec(name), id: { role: 'service_role', sub: claims.owner ?? null },
				upsert: !!claims.upsert, owner: claims.owner ?? null,
			});
		}

		// --- authenticated routes
		let id;
		try { id = identify(req, url); } catch (e) { if (m === 'POST' || m === 'PUT') drain(req, res); throw e; }

		if (p === '/bucket' || p === '/bucket/') {
			if (m === 'GET') return [200, Object.values(st.buckets).map(bucketJson)];
			if (m === 'POST') return createBucket(req, id);
		}
		let bm;
		if ((bm = /^\/bucket\/([^/]+)\/empty$/.exec(p)) && m === 'POST') return emptyBucket(id, dec(bm[1]));
		if ((bm = /^\/bucket\/([^/]+)$/.exec(p))) {
			const name = dec(bm[1]);
			if (m === 'GET') return [200, bucketJson(needBucket(name))];
			if (m === 'PUT') return updateBucket(req, id, name);
			if (m === 'DELETE') return deleteBucket(id, name);
		}
		if (p === '/object/move' && m === 'POST') return moveOrCopy(req, id, false);
		if (p === '/object/copy' && m === 'POST') return moveOrCopy(req, id, true);
		if ((rest = after(p, '/object/list/')) !== null && m === 'POST') return list(req, id, dec(rest.replace(/\/$/, '')));
		if ((rest = after(p, '/object/upload/sign/')) !== null && m === 'POST') {
			const [bn, name] = splitBucketPath(rest);
			return signUpload(req, id, dec(bn), dec(name));
		}
		if ((rest = after(p, '/object/sign/')) !== null && m === 'POST') {
			const [bn, name] = splitBucketPath(rest);
			if (!name) return signMany(req, id, dec(bn));
			return sign(req, id, dec(bn), dec(name));
		}
		if ((rest = after(p, '/object/info/authenticated/') ?? after(p, '/object/info/')) !== null && m === 'GET') {
			const [bn, name] = splitBucketPath(rest);
			const obj = readable(id, dec(bn), dec(name));
			return [200, infoJson(obj), { ETag: obj.metadata.eTag }];
		}
		if ((rest = after(p, '/object/authenticated/') ?? after(p, '/object/')) !== null) {
			const [bn, name] = splitBucketPath(rest);
			const bucketName = dec(bn), objName = dec(name);
			if (m === 'GET' || m === 'HEAD') {
				if (!objName) throw E.notFound();
				serveObject(req, res, url, readable(id, bucketName, objName, { download: true }));
				return null;
			}
			if (m === 'POST' || m === 'PUT') {
				return upload(req, res, {
					bucketName, name: objName, id,
					upsert: m === 'PUT' || String(req.headers['x-upsert']) === 'true',
				});
			}
			if (m === 'DELETE') {
				if (!objName) return removeMany(req, id, bucketName);
				return removeOne(id, bucketName, objName);
			}
		}
		throw E.notFound();
	}
	function after(p, prefix) { return p.startsWith(prefix) ? p.slice(prefix.length) : null; }

	function sendError(req, res, e) {
		if (!(e instanceof SErr)) {
			process.stderr.write(`storage emulator: ${e.stack || e}\n`);
			e = new SErr(500, 'InternalError', 'Internal server error', 'Internal Server Error');
		}
		const http = e.status === 500 ? 500 : 400;
		sendJson(res, http, { statusCode: String(e.status), code: e.code, error: e.error, message: e.message },
			{ 'Cache-Control': 'no-store' });
	}

	async function emuRoutes(req, res, url) {
		if (await control.handle(req, res, url)) return;
		const p = url.pathname;
		if (p === '/_emu/config' && req.method === 'GET') return sendJson(res, 200, cfg);
		if (p === '/_emu/config' && req.method === 'POST') {
			let b;
			try { b = JSON.parse((await readBody(req)).toString('utf8') || '{}'); } catch { return sendJson(res, 400, { message: 'invalid JSON' }); }
			for (const [k, v] of Object.entries(b)) {
				if (!(k in cfg)) return sendJson(res, 400, { message: `unknown config key ${k}` });
				cfg[k] = k === 'bucket_admin_roles' ? (Array.isArray(v) ? v : String(v).split(',')) : Number(v);
			}
			return sendJson(res, 200, cfg);
		}
		if (p === '/_emu/state' && req.method === 'GET') {
			const objs = Object.values(st.objects);
			return sendJson(res, 200, {
				...counters, buckets: Object.keys(st.buckets).length, objects: objs.length,
				bytes: objs.reduce((n, o) => n + o.metadata.size, 0), data_dir: dataDir,
			});
		}
		if (p === '/_emu/reset' && req.method === 'POST') {
			for (const k of Object.keys(st.objects)) removeObject(k);
			st.buckets = {};
			persist();
			return sendJson(res, 200, { reset: true });
		}
		sendJson(res, 404, { message: 'unknown control endpoint' });
	}

	async function handler(req, res) {
		let url;
		try { url = new URL(req.url, 'http://emulator'); } catch { sendJson(res, 400, { message: 'bad url' }); return; }
		if (url.pathname.startsWith('/_emu/')) {
			try { await emuRoutes(req, res, url); } catch (e) { sendJson(res, 500, { message: String(e) }); }
			return;
		}
		const p = url.pathname.startsWith('/storage/v1/') || url.pathname === '/storage/v1'
			? url.pathname.slice('/storage/v1'.length) || '/' : url.pathname;
		const entry = req.emuEntry = control.log({
			time: isoNow(), method: req.method, path: url.pathname, service_path: p,
			query: Object.fromEntries(url.searchParams), raw_query: url.search,
			headers: headerObject(req), body: null, status: null,
		});
		res.on('finish', () => { entry.status = res.statusCode; });
		const fault = control.takeFault(url.pathname, p);
		if (fault) entry.fault = fault.mode;
		const consumed = await applyFault(fault, req, res,
			(r, status) => { drain(req, r); sendJson(r, status, { statusCode: String(status), code: 'InternalError', error: 'emulated fault', message: 'emulated upstream fault' }); },
			(r, retry) => { drain(req, r); sendJson(r, 429, { statusCode: '429', code: 'SlowDown', error: 'SlowDown', message: 'Please reduce your request rate.' }, { 'Retry-After': retry }); });
		if (consumed) return;
		if (p === TUS_PATH || p.startsWith(`${TUS_PATH}/`)) {
			try { await tusRoute(req, res, url, p); }
			catch (e) { if (res.headersSent || res.destroyed) res.destroy(); else tusError(req, res, e); }
			return;
		}
		try {
			const out = await route(req, res, url, p);
			if (!out || res.headersSent) return;
			const [status, body, headers] = out;
			sendJson(res, status, body, headers || {});
		} catch (e) {
			if (res.headersSent) { res.destroy(); return; }
			sendError(req, res, e);
		}
	}

	return { handler, state: st, cfg, control, secret, dataDir };
}

export async function startStorage(opts = {}) {
	const app = createStorage(opts);
	const inst = await listen(app.handler, { host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
	return { ...inst, app };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
	const opts = parseArgs(process.argv.slice(2), { host: '127.0.0.1', port: '0' });
	if (!opts.dataDir) { process.stderr.write('storage-emulator: --data-dir is required\n'); process.exit(2); }
	runCli(startStorage, { ...opts, name: 'storage-emulator' }).catch((e) => {
		process.stderr.write(`storage-emulator: ${e.message}\n`);
		process.exit(1);
	});
}
