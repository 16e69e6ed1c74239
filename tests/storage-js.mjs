// storage-js.mjs: supabase-js Storage calls through supagate with a
// placeholder key (run by tests/check_storage).  Signs a user in through
// supagate, then createSignedUrl / createSignedUrls / createSignedUploadUrl +
// uploadToSignedUrl / download, and fetches every signed URL it got with no
// key.  Prints one line per step; exits 1 on the first failure.
//
// Environment: GATE_URL (supagate), AUTH_URL (the Auth emulator, to create
// the user), SUPAGATE_NODE_MODULES, BUCKET (a private bucket).
import { createRequire } from 'node:module';
import path from 'node:path';

const env = (k) => {
	if (!process.env[k]) { console.error(`storage-js: ${k} is not set`); process.exit(2); }
	return process.env[k];
};
const gate = env('GATE_URL'), authUrl = env('AUTH_URL'), bucket = env('BUCKET');
const require = createRequire(path.join(path.resolve(env('SUPAGATE_NODE_MODULES')), 'noop.js'));
const { createClient } = require('@supabase/supabase-js');
const ws = require('ws');

function check(cond, what, detail) {
	if (!cond) {
		console.error(`FAIL ${what}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
		process.exit(1);
	}
	console.log(`ok ${what}`);
}
// a failure that does not stop the later steps
let soft = 0;
function expect(cond, what, detail) {
	if (!cond) { soft++; console.error(`FAIL ${what}: ${JSON.stringify(detail)}`); } else console.log(`ok ${what}`);
}

const opts = { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: ws } };
const email = `js-${process.pid}@example.com`, password = 'storage-js-secret';

let r = await fetch(`${authUrl}/_emu/users`, {
	method: 'POST', headers: { 'content-type': 'application/json' },
	body: JSON.stringify({ email, password }),
});
check(r.ok, 'create user in the Auth emulator', `${r.status}`);

const sb = createClient(gate, 'placeholder-key', opts);
let res = await sb.auth.signInWithPassword({ email, password });
check(!res.error && res.data.session, 'signInWithPassword through supagate', res.error);
const session = res.data.session;
const st = sb.storage.from(bucket);
const name = `js/${process.pid}.txt`;

res = await st.upload(name, 'hello from supabase-js', { contentType: 'text/plain' });
check(!res.error, 'upload', res.error);

async function fetchText(url) {
	const x = await fetch(url);
	return { status: x.status, text: await x.text() };
}

res = await st.createSignedUrl(name, 600);
check(!res.error && res.data.signedUrl.startsWith(`${gate}/storage/v1/object/sign/`), 'createSignedUrl points at supagate', res.error ?? res.data);
const one = res.data.signedUrl;
let f = await fetchText(one);
check(f.status === 200 && f.text === 'hello from supabase-js', 'signed URL works with no key', f);
// a second later: a new signature would differ (iat), so equal means reused
await new Promise((r) => setTimeout(r, 1100));
res = await st.createSignedUrl(name, 600);
expect(!res.error && res.data.signedUrl === one, 'second createSignedUrl is the same URL (broker)', { first: one, second: res.data?.signedUrl });

res = await st.createSignedUrls([name, 'js/missing.txt'], 600);
check(!res.error && res.data.length === 2, 'createSignedUrls', res.error ?? res.data);
check(res.data[0].signedUrl && res.data[0].signedUrl.startsWith(`${gate}/storage/v1/`) && res.data[0].error === null,
	'createSignedUrls: the object', res.data[0]);
check(res.data[1].error && !res.data[1].signedUrl, 'createSignedUrls: the missing object', res.data[1]);
f = await fetchText(res.data[0].signedUrl);
check(f.status === 200 && f.text === 'hello from supabase-js', 'batch signed URL works with no key', f);

const upName = `js/${process.pid}-signed.txt`;
res = await st.createSignedUploadUrl(upName);
check(!res.error && res.data.token && res.data.signedUrl.startsWith(`${gate}/storage/v1/`), 'createSignedUploadUrl', res.error ?? res.data);
res = await st.uploadToSignedUrl(upName, res.data.token, 'uploaded to a signed URL', { contentType: 'text/plain' });
check(!res.error, 'uploadToSignedUrl', res.error);

// a second client that adopts the session with setSession
const sb2 = createClient(gate, 'placeholder-key', opts);
res = await sb2.auth.setSession({ access_token: session.access_token, refresh_token: session.refresh_token });
check(!res.error, 'setSession', res.error);
res = await sb2.storage.from(bucket).download(upName);
check(!res.error && (await res.data.text()) === 'uploaded to a signed URL', 'download as the session user', res.error);

// without the session (placeholder key only): the private object is hidden
const anon = createClient(gate, 'placeholder-key', opts);
res = await anon.storage.from(bucket).download(upName);
check(res.error, 'download without a session is refused', res.data);
if (soft) { console.error(`storage-js: ${soft} failed`); process.exit(1); }
console.log('storage-js: all ok');
process.exit(0);
