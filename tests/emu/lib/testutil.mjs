// Shared helpers for the emulator self-tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { signJwt } from './common.mjs';

// Per-test timeout for every emulator test (node:test's `timeout` option):
// a hung request fails its test within seconds instead of waiting for
// undici's 300 s headers timeout. EMU_TEST_TIMEOUT_MS overrides it.
export const TEST_TIMEOUT = Number(process.env.EMU_TEST_TIMEOUT_MS) || 20_000;

export const SECRET = 'emulator-test-secret-with-at-least-32-characters';

export function tmpDir(prefix) {
	return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function secretFile(dir) {
	const f = path.join(dir, 'jwt-secret');
	fs.writeFileSync(f, `${SECRET}\n`, { mode: 0o600 });
	return f;
}

export const anonKey = signJwt({ iss: 'supabase-demo', role: 'anon', exp: 1983812996 }, SECRET);
export const serviceKey = signJwt({ iss: 'supabase-demo', role: 'service_role', exp: 1983812996 }, SECRET);

export function decodeJwt(t) {
	return JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString('utf8'));
}

// fetch wrapper: returns { status, headers, body (parsed JSON when possible), text }
export async function call(base, method, p, { headers = {}, body, raw } = {}) {
	const init = { method, headers: { ...headers }, redirect: 'manual' };
	if (body !== undefined) {
		if (raw) init.body = body;
		else { init.body = JSON.stringify(body); init.headers['content-type'] ??= 'application/json'; }
	}
	const r = await fetch(base + p, init);
	const text = await r.text();
	let parsed = null;
	try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
	return { status: r.status, headers: r.headers, body: parsed, text };
}
