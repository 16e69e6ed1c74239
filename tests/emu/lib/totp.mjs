// RFC 4226 HOTP / RFC 6238 TOTP (SHA-1, 6 digits, 30 s) and RFC 4648 base32.
import crypto from 'node:crypto';

const ALPHA = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function base32Encode(buf) {
	let bits = 0, value = 0, out = '';
	for (const byte of buf) {
		value = (value << 8) | byte;
		bits += 8;
		while (bits >= 5) {
			out += ALPHA[(value >>> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0) out += ALPHA[(value << (5 - bits)) & 31];
	return out;
}

export function base32Decode(str) {
	const clean = str.toUpperCase().replace(/=+$/, '').replace(/\s+/g, '');
	let bits = 0, value = 0;
	const out = [];
	for (const ch of clean) {
		const idx = ALPHA.indexOf(ch);
		if (idx < 0) throw new Error('invalid base32');
		value = (value << 5) | idx;
		bits += 5;
		if (bits >= 8) {
			out.push((value >>> (bits - 8)) & 255);
			bits -= 8;
		}
	}
	return Buffer.from(out);
}

export function hotp(key, counter, digits = 6) {
	const msg = Buffer.alloc(8);
	msg.writeBigUInt64BE(BigInt(counter));
	const mac = crypto.createHmac('sha1', key).update(msg).digest();
	const off = mac[mac.length - 1] & 0x0f;
	const bin = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3];
	return String(bin % 10 ** digits).padStart(digits, '0');
}

export function totp(secretB32, timeMs = Date.now(), period = 30, digits = 6) {
	return hotp(base32Decode(secretB32), Math.floor(timeMs / 1000 / period), digits);
}

// GoTrue validates with a skew of one period either side.
export function totpValid(secretB32, code, timeMs = Date.now(), skew = 1) {
	if (typeof code !== 'string' || !/^\d{6}$/.test(code)) return false;
	const key = base32Decode(secretB32);
	const step = Math.floor(timeMs / 1000 / 30);
	for (let d = -skew; d <= skew; d++) {
		const want = Buffer.from(hotp(key, step + d));
		if (crypto.timingSafeEqual(want, Buffer.from(code))) return true;
	}
	return false;
}
