#!/usr/bin/env node
// gen-jwks.mjs: make the ES256/RS256 test vectors of tests/check_jwk.c
// with Node's crypto module and print them as a C header.
//   node tests/data/jwks/gen-jwks.mjs > tests/data/jwks/vectors.h
// The output is committed, so the unit tests do not need node; rerun it
// only to change the vectors.
import crypto from 'node:crypto';

const b64u = (b) => Buffer.from(b).toString('base64url');
const pubjwk = (k, extra) => ({ ...k.publicKey.export({ format: 'jwk' }),
    ...extra });

function token(header, payload, key, alg) {
	const data = b64u(JSON.stringify(header)) + '.' +
	    b64u(JSON.stringify(payload));
	const sig = alg === 'ES256' ?
	    crypto.sign('sha256', Buffer.from(data),
	        { key, dsaEncoding: 'ieee-p1363' }) :
	    crypto.sign('sha256', Buffer.from(data), key);
	return data + '.' + b64u(sig);
}

const ec1 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec2 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec384 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
const rsa2k = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsa3k = crypto.generateKeyPairSync('rsa',
    { modulusLength: 3072, publicExponent: 3 });
const rsa4k = crypto.generateKeyPairSync('rsa', { modulusLength: 4096 });
const rsa1k = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 });
const ed = crypto.generateKeyPairSync('ed25519');

const jwks = { keys: [
	{ kty: 'oct', kid: 'hmac', k: b64u(crypto.randomBytes(32)) },
	{ ...pubjwk(ed), kid: 'ed', use: 'sig' },
	{ ...pubjwk(ec384), kid: 'p384', use: 'sig' },
	pubjwk(ec1, { kid: 'ec-1', use: 'sig', alg: 'ES256' }),
	pubjwk(ec2, { kid: 'ec-2', use: 'sig', alg: 'ES256' }),
	pubjwk(rsa2k, { kid: 'rsa-1', use: 'sig', alg: 'RS256' }),
	pubjwk(rsa3k, { kid: 'rsa-3', alg: 'RS256' }),
	pubjwk(rsa4k, { kid: 'rsa-4', use: 'sig' }),
	pubjwk(ec2, { kid: 'ec-enc', use: 'enc' }),
	pubjwk(rsa2k, { kid: 'rsa-ps', alg: 'PS256' }),
] };

const FAR = 4102444800;		// 2100-01-01
const iat = 1764000000;
const claims = (sub, extra) => ({ aud: 'authenticated', exp: FAR, iat,
    sub, role: 'authenticated', email: sub + '@example.com', ...extra });
const es = (kid) => ({ alg: 'ES256', typ: 'JWT', kid });
const rs = (kid) => ({ alg: 'RS256', typ: 'JWT', kid });

const out = {
	JWKS: JSON.stringify(jwks, null, 1),
	EC1_JWK: JSON.stringify(pubjwk(ec1, { kid: 'ec-1' })),
	EC1_NOKID_JWK: JSON.stringify(pubjwk(ec1, {})),
	RSA1K_JWK: JSON.stringify(pubjwk(rsa1k, { kid: 'small' })),
	EC1_X: pubjwk(ec1).x,
	EC1_Y: pubjwk(ec1).y,
	TOK_ES_A: token(es('ec-1'), claims('user-a'), ec1.privateKey,
	    'ES256'),
	TOK_ES_A2: token(es('ec-1'), claims('user-a', { iat: iat + 60 }),
	    ec1.privateKey, 'ES256'),
	TOK_ES_B: token(es('ec-2'), claims('user-b'), ec2.privateKey,
	    'ES256'),
	TOK_ES_B2: token(es('ec-2'), claims('user-b', { iat: iat + 60 }),
	    ec2.privateKey, 'ES256'),
	JWKS_EC1: JSON.stringify({ keys: [pubjwk(ec1, { kid: 'ec-1' })] }),
	JWKS_EC2: JSON.stringify({ keys: [pubjwk(ec2, { kid: 'ec-2' })] }),
	JWKS_EC12: JSON.stringify({ keys: [pubjwk(ec1, { kid: 'ec-1' }),
	    pubjwk(ec2, { kid: 'ec-2' })] }),
	TOK_ES_NOKID: token({ alg: 'ES256', typ: 'JWT' }, claims('user-n'),
	    ec2.privateKey, 'ES256'),
	TOK_ES_EXPIRED: token(es('ec-1'), claims('user-a',
	    { exp: 1600000000 }), ec1.privateKey, 'ES256'),
	TOK_ES_NBF: token(es('ec-1'), claims('user-a', { nbf: FAR - 10 }),
	    ec1.privateKey, 'ES256'),
	TOK_ES_UNKNOWN_KID: token(es('ec-9'), claims('user-a'),
	    ec1.privateKey, 'ES256'),
	TOK_ES_WRONG_KID: token(es('ec-2'), claims('user-a'), ec1.privateKey,
	    'ES256'),
	TOK_ES_ENC_KID: token(es('ec-enc'), claims('user-a'), ec2.privateKey,
	    'ES256'),
	TOK_ES_AS_RSA: token(es('rsa-1'), claims('user-a'), ec1.privateKey,
	    'ES256'),
	TOK_RS_1: token(rs('rsa-1'), claims('user-r', { role: 'service' }),
	    rsa2k.privateKey, 'RS256'),
	TOK_RS_3: token(rs('rsa-3'), claims('user-3'), rsa3k.privateKey,
	    'RS256'),
	TOK_RS_4: token(rs('rsa-4'), claims('user-4'), rsa4k.privateKey,
	    'RS256'),
	TOK_RS_WRONG_KEY: token(rs('rsa-1'), claims('user-r'),
	    rsa4k.privateKey, 'RS256'),
	TOK_RS_PS_KID: token(rs('rsa-ps'), claims('user-r'),
	    rsa2k.privateKey, 'RS256'),
	TOK_RS_CRIT: token({ ...rs('rsa-1'), crit: ['exp'] }, claims('user-r'),
	    rsa2k.privateKey, 'RS256'),
	TOK_NONE: b64u(JSON.stringify({ alg: 'none', typ: 'JWT' })) + '.' +
	    b64u(JSON.stringify(claims('user-a'))) + '.',
};

// modular exponentiation vectors for the bn tests: a^e mod m
const hex = (v, bytes) => v.toString(16).padStart(bytes * 2, '0');
const big = (b) => BigInt('0x' + b.toString('hex'));
function modpow(a, e, m) {
	let r = 1n;
	a %= m;
	while (e > 0n) {
		if (e & 1n)
			r = r * a % m;
		a = a * a % m;
		e >>= 1n;
	}
	return r;
}
const pow = [];
for (const bytes of [8, 32, 256, 512]) {
	const mb = crypto.randomBytes(bytes);
	mb[0] |= 0x80;
	mb[bytes - 1] |= 1;
	const m = big(mb);
	const a = big(crypto.randomBytes(bytes)) % m;
	const e = big(crypto.randomBytes(bytes));
	pow.push([hex(m, bytes), hex(a, bytes), hex(e, bytes),
	    hex(modpow(a, e, m), bytes)]);
}

const cstr = (s) => JSON.stringify(s).replace(/\\n/g, '\\n"\n    "');
let h = '/* generated by tests/data/jwks/gen-jwks.mjs: do not edit */\n';
for (const [k, v] of Object.entries(out))
	h += `static const char ${k}[] =\n    ${cstr(v)};\n`;
h += 'static const char *const POW[][4] = {\n';
for (const v of pow)
	h += '\t{ ' + v.map((x) => `"${x}"`).join(',\n\t    ') + ' },\n';
h += '};\n';
process.stdout.write(h);
