#!/usr/bin/env node
// GoTrue (Supabase Auth) HTTP-contract emulator for supagate's tests.
// See tests/emu/README.md for the endpoints and deliberate simplifications.
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
	parseArgs, parseBool, readSecretFile, signJwt, verifyJwt, uuid, nowSec, isoNow,
	sendJson, readBody, headerObject, Control, applyFault, listen, runCli,
} from './lib/common.mjs';
import { base32Encode, totpValid } from './lib/totp.mjs';

const API_VERSION = '2024-01-01';
const OPEN_ROUTES = ['/verify', '/callback', '/authorize', '/.well-known/jwks.json', '/health'];
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

class HttpErr extends Error {
	constructor(status, code, msg, extra) {
		super(msg);
		this.status = status; this.code = code; this.extra = extra;
	}
}
class OAuthErr extends Error {
	constructor(error, description) { super(description); this.error = error; }
}
const bad = (code, msg, extra) => new HttpErr(400, code, msg, extra);
const forbidden = (code, msg) => new HttpErr(403, code, msg);
const unprocessable = (code, msg, extra) => new HttpErr(422, code, msg, extra);

export function createAuth(opts) {
	const secret = opts.secret ?? readSecretFile(opts.jwtSecretFile);
	const cfg = {
		token_lifetime: Number(opts.tokenLifetime ?? 3600),
		reuse_interval: Number(opts.reuseInterval ?? 10),
		autoconfirm: parseBool(opts.autoconfirm, true),
		phone_autoconfirm: parseBool(opts.phoneAutoconfirm, false),
		anonymous_users: parseBool(opts.anonymousUsers, false),
		disable_signup: parseBool(opts.disableSignup, false),
		otp_lifetime: Number(opts.otpLifetime ?? 3600),
		challenge_lifetime: Number(opts.challengeLifetime ?? 300),
		site_url: opts.siteUrl ?? 'http://localhost:3000',
		providers: String(opts.providers ?? 'github,google').split(',').filter(Boolean),
		issuer: opts.issuer ?? 'http://127.0.0.1/auth/v1',
	};
	const control = new Control();
	const st = {
		users: new Map(),        // id -> user record
		sessions: new Map(),     // id -> session
		tokens: new Map(),       // refresh token string -> token row
		otps: [],                // issued OTPs, newest last
		factors: new Map(),      // id -> factor
		challenges: new Map(),   // id -> challenge
		counters: {
			signups: 0, password_grants: 0, refresh_requests: 0, refresh_rotations: 0,
			refresh_parent_returns: 0, refresh_reuse_in_interval: 0, refresh_family_revocations: 0,
			refresh_failures: 0, otp_sent: 0, verifies: 0, logouts: 0, mfa_verifies: 0,
		},
	};

	// ---------- users / sessions / tokens ----------
	function findUserByEmail(email) {
		email = String(email).toLowerCase();
		for (const u of st.users.values()) if (u.email === email) return u;
		return null;
	}
	function findUserByPhone(phone) {
		for (const u of st.users.values()) if (u.phone && u.phone === phone) return u;
		return null;
	}
	function hashPassword(pw) {
		const salt = crypto.randomBytes(8).toString('hex');
		return `${salt}$${crypto.createHash('sha256').update(salt + pw).digest('hex')}`;
	}
	function checkPassword(u, pw) {
		if (!u.password_hash || typeof pw !== 'string') return false;
		const [salt, h] = u.password_hash.split('$');
		const got = crypto.createHash('sha256').update(salt + pw).digest('hex');
		return crypto.timingSafeEqual(Buffer.from(got), Buffer.from(h));
	}
	function checkPasswordStrength(pw) {
		if (typeof pw !== 'string' || pw.length < 6)
			throw unprocessable('weak_password', 'Password should be at least 6 characters.',
				{ weak_password: { reasons: ['length'] } });
	}
	function newUser({ email, phone, password, data, anonymous, provider }) {
		const t = isoNow();
		const id = uuid();
		provider = provider || (anonymous ? 'anonymous' : phone && !email ? 'phone' : 'email');
		const u = {
			id, aud: 'authenticated', role: 'authenticated',
			email: email ? String(email).toLowerCase() : '',
			phone: phone || '',
			password_hash: password ? hashPassword(password) : null,
			email_confirmed_at: null, phone_confirmed_at: null, confirmation_sent_at: null,
			last_sign_in_at: null,
			app_metadata: anonymous ? {} : { provider, providers: [provider] },
			user_metadata: data && typeof data === 'object' ? { ...data } : {},
			created_at: t, updated_at: t, is_anonymous: !!anonymous,
			new_email: null,
		};
		st.users.set(id, u);
		return u;
	}
	function userJson(u) {
		const j = {
			id: u.id, aud: u.aud, role: u.role, email: u.email,
			phone: u.phone,
		};
		if (u.email_confirmed_at) j.email_confirmed_at = u.email_confirmed_at;
		if (u.phone_confirmed_at) j.phone_confirmed_at = u.phone_confirmed_at;
		if (u.confirmation_sent_at) j.confirmation_sent_at = u.confirmation_sent_at;
		const confirmed = u.email_confirmed_at || u.phone_confirmed_at;
		if (confirmed) j.confirmed_at = confirmed;
		if (u.new_email) { j.new_email = u.new_email; j.email_change_sent_at = u.email_change_sent_at; }
		if (u.last_sign_in_at) j.last_sign_in_at = u.last_sign_in_at;
		j.app_metadata = u.app_metadata;
		j.user_metadata = u.user_metadata;
		j.identities = u.is_anonymous ? [] : [{
			identity_id: u.id, id: u.id, user_id: u.id,
			identity_data: { email: u.email, email_verified: !!u.email_confirmed_at, phone_verified: !!u.phone_confirmed_at, sub: u.id },
			provider: u.app_metadata.provider || 'email',
			last_sign_in_at: u.last_sign_in_at || u.created_at, created_at: u.created_at,
			updated_at: u.updated_at, email: u.email,
		}];
		const fs = [...st.factors.values()].filter((f) => f.user_id === u.id);
		if (fs.length) j.factors = fs.map(factorJson);
		j.created_at = u.created_at;
		j.updated_at = u.updated_at;
		j.is_anonymous = u.is_anonymous;
		return j;
	}
	function factorJson(f) {
		return {
			id: f.id, friendly_name: f.friendly_name, factor_type: f.factor_type,
			status: f.status, created_at: f.created_at, updated_at: f.updated_at,
		};
	}

	function newRefreshToken(session, parent) {
		const token = crypto.randomBytes(16).toString('base64url').replace(/[-_]/g, 'x').slice(0, 22).toLowerCase();
		const row = {
			token, session_id: session.id, user_id: session.user_id, parent: parent || null,
			revoked: false, created_at: Date.now(), updated_at: Date.now(),
		};
		st.tokens.set(token, row);
		return row;
	}
	function activeToken(session) {
		let best = null;
		for (const t of st.tokens.values())
			if (t.session_id === session.id && !t.revoked && (!best || t.created_at >= best.created_at)) best = t;
		return best;
	}
	function deleteSession(id) {
		st.sessions.delete(id);
		for (const [k, t] of st.tokens) if (t.session_id === id) st.tokens.delete(k);
	}
	function accessToken(user, session) {
		const iat = nowSec();
		const claims = {
			iss: cfg.issuer, sub: user.id, aud: 'authenticated', exp: iat + cfg.token_lifetime, iat,
			email: user.email, phone: user.phone,
			app_metadata: user.app_metadata, user_metadata: user.user_metadata,
			role: user.is_anonymous ? 'anon' : 'authenticated',
			aal: session.aal, amr: session.amr, session_id: session.id,
			is_anonymous: user.is_anonymous,
		};
		return { jwt: signJwt(claims, secret), exp: claims.exp };
	}
	function sessionResponse(user, session, refreshToken) {
		const at = accessToken(user, session);
		return {
			access_token: at.jwt, token_type: 'bearer', expires_in: cfg.token_lifetime,
			expires_at: at.exp, refresh_token: refreshToken, user: userJson(user),
		};
	}
	function signIn(user, method) {
		const t = nowSec();
		user.last_sign_in_at = isoNow();
		const session = {
			id: uuid(), user_id: user.id, aal: 'aal1', amr: [{ method, timestamp: t }],
			created_at: isoNow(), refreshed_at: null,
		};
		st.sessions.set(session.id, session);
		const rt = newRefreshToken(session, null);
		return sessionResponse(user, session, rt.token);
	}

	// ---------- OTPs ----------
	function issueOtp(user, type, address) {
		const code = String(crypto.randomInt(0, 1000000)).padStart(6, '0');
		const token_hash = crypto.createHash('sha224').update(`${address}${code}`).digest('hex');
		const o = { user_id: user.id, type, address, code, token_hash, created_at: Date.now(), used: false };
		st.otps.push(o);
		st.counters.otp_sent++;
		return o;
	}
	const OTP_TYPES_FOR = {
		signup: ['signup'], email: ['signup', 'magiclink'], magiclink: ['magiclink', 'signup'],
		recovery: ['recovery'], invite: ['invite'], email_change: ['email_change'],
		sms: ['sms'], phone_change: ['phone_change'],
	};
	function consumeOtp({ type, token, token_hash, email, phone }) {
		const allowed = OTP_TYPES_FOR[type];
		if (!allowed) throw bad('validation_failed', `Verify requires a verification type`);
		const now = Date.now();
		for (let i = st.otps.length - 1; i >= 0; i--) {
			const o = st.otps[i];
			if (o.used || !allowed.includes(o.type)) continue;
			if (now - o.created_at > cfg.otp_lifetime * 1000) continue;
			let hit = false;
			if (token_hash) hit = o.token_hash === token_hash;
			else if (email) hit = o.address === String(email).toLowerCase() && o.code === token;
			else if (phone) hit = o.address === phone && o.code === token;
			else if (token) hit = o.token_hash === token; // GET /verify passes the hash as token
			if (hit) { o.used = true; return o; }
		}
		throw forbidden('otp_expired', 'Token has expired or is invalid');
	}
	function verifyOtp(params) {
		const o = consumeOtp(params);
		const u = st.users.get(o.user_id);
		if (!u) throw forbidden('otp_expired', 'Token has expired or is invalid');
		const t = isoNow();
		if (o.type === 'email_change') {
			u.email = u.new_email; u.new_email = null; u.email_change_sent_at = null;
			u.email_confirmed_at = u.email_confirmed_at || t;
		} else if (o.type === 'sms' || o.type === 'phone_change') {
			u.phone_confirmed_at = u.phone_confirmed_at || t;
		} else {
			u.email_confirmed_at = u.email_confirmed_at || t;
		}
		u.updated_at = t;
		st.counters.verifies++;
		return { user: u, session: signIn(u, 'otp'), type: params.type };
	}

	// ---------- request auth ----------
	function checkApiKey(req, url) {
		const h = req.headers.apikey;
		const q = url.searchParams.getAll('apikey');
		if (Array.isArray(h) || q.length > 1 || (h && q.length))
			return { status: 401, body: { message: 'Duplicate API key found' } };
		const key = h || q[0];
		if (!key) return { status: 401, body: { message: 'No API key found in request', hint: 'No apikey request header or url param was found.' } };
		const v = verifyJwt(key, secret);
		if (!v.ok || !['anon', 'service_role'].includes(v.claims.role))
			return { status: 401, body: { message: 'Invalid API key', hint: 'Double check your Supabase `anon` or `service_role` API key.' } };
		return null;
	}
	function requireUser(req) {
		const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization || '');
		if (!m) throw new HttpErr(401, 'no_authorization', 'This endpoint requires a Bearer token');
		const v = verifyJwt(m[1], secret);
		if (!v.ok) {
			const why = v.reason === 'expired' ? 'token has invalid claims: token is expired'
				: v.reason === 'signature' ? 'token signature is invalid: signature is invalid'
				: 'token is malformed';
			throw forbidden('bad_jwt', `invalid JWT: unable to parse or verify signature, ${why}`);
		}
		const c = v.claims;
		if (!c.sub) throw forbidden('bad_jwt', 'invalid claim: missing sub claim');
		const user = st.users.get(c.sub);
		if (!user) throw forbidden('user_not_found', 'User from sub claim in JWT does not exist');
		let session = null;
		if (c.session_id) {
			session = st.sessions.get(c.session_id);
			if (!session) throw forbidden('session_not_found', 'Session from session_id claim in JWT does not exist');
		}
		return { claims: c, user, session };
	}

	// ---------- handlers ----------
	async function jsonBody(req) {
		const buf = req.rawBody || Buffer.alloc(0);
		if (!buf.length) return {};
		try {
			const v = JSON.parse(buf.toString('utf8'));
			return v && typeof v === 'object' ? v : {};
		} catch (e) {
			throw bad('bad_json', `Could not parse request body as JSON: ${e.message}`);
		}
	}

	async function signup(req, url) {
		const b = await jsonBody(req);
		if (cfg.disable_signup) throw unprocessable('signup_disabled', 'Signups not allowed for this instance');
		if (!b.email && !b.phone) {
			if (!cfg.anonymous_users) throw unprocessable('anonymous_provider_disabled', 'Anonymous sign-ins are disabled');
			const u = newUser({ anonymous: true, data: b.data });
			st.counters.signups++;
			return [200, signIn(u, 'anonymous')];
		}
		if (b.email && !EMAIL_RE.test(b.email)) throw bad('validation_failed', 'Unable to validate email address: invalid format');
		if (!b.password) throw unprocessable('validation_failed', 'Signup requires a valid password');
		checkPasswordStrength(b.password);
		const existing = b.email ? findUserByEmail(b.email) : findUserByPhone(b.phone);
		const autoconfirm = b.email ? cfg.autoconfirm : cfg.phone_autoconfirm;
		if (existing) {
			const confirmed = b.email ? existing.email_confirmed_at : existing.phone_confirmed_at;
			if (confirmed || autoconfirm) {
				if (autoconfirm) throw unprocessable('user_already_exists', 'User already registered');
				// confirmation on: GoTrue answers with an obfuscated user (no identities)
				const j = userJson(existing); j.identities = [];
				return [200, j];
			}
			existing.password_hash = hashPassword(b.password);
			existing.confirmation_sent_at = isoNow();
			issueOtp(existing, b.email ? 'signup' : 'sms', b.email ? existing.email : existing.phone);
			return [200, userJson(existing)];
		}
		const u = newUser({ email: b.email, phone: b.email ? undefined : b.phone, password: b.password, data: b.data });
		st.counters.signups++;
		if (autoconfirm) {
			if (b.email) u.email_confirmed_at = isoNow(); else u.phone_confirmed_at = isoNow();
			return [200, signIn(u, 'password')];
		}
		u.confirmation_sent_at = isoNow();
		issueOtp(u, b.email ? 'signup' : 'sms', b.email ? u.email : u.phone);
		return [200, userJson(u)];
	}

	async function token(req, url, res) {
		const grant = url.searchParams.get('grant_type');
		const b = await jsonBody(req);
		if (grant === 'password') {
			st.counters.password_grants++;
			const u = b.email ? findUserByEmail(b.email) : b.phone ? findUserByPhone(b.phone) : null;
			if (!b.email && !b.phone) throw bad('validation_failed', 'missing email or phone');
			if (!u || !checkPassword(u, b.password)) throw bad('invalid_credentials', 'Invalid login credentials');
			if (b.email && !u.email_confirmed_at) throw bad('email_not_confirmed', 'Email not confirmed');
			if (!b.email && !u.phone_confirmed_at) throw bad('phone_not_confirmed', 'Phone not confirmed');
			return [200, signIn(u, 'password')];
		}
		if (grant === 'refresh_token') return refreshGrant(b, res);
		if (grant === 'pkce' || grant === 'id_token' || grant === 'web3')
			throw bad('validation_failed', `grant_type=${grant} is not supported by the emulator`);
		throw new OAuthErr('unsupported_grant_type', '');
	}

	function refreshGrant(b, res) {
		st.counters.refresh_requests++;
		try {
			return refreshInner(b, res);
		} catch (e) {
			st.counters.refresh_failures++;
			throw e;
		}
	}
	function refreshInner(b, res) {
		if (!b.refresh_token || typeof b.refresh_token !== 'string')
			throw new OAuthErr('invalid_request', 'refresh_token required');
		const tok = st.tokens.get(b.refresh_token);
		if (!tok) throw bad('refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
		const user = st.users.get(tok.user_id);
		if (!user) throw bad('refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
		res.setHeader('sb-auth-user-id', user.id);
		const session = st.sessions.get(tok.session_id);
		if (!session) throw bad('session_not_found', 'Invalid Refresh Token: No Valid Session Found');
		res.setHeader('sb-auth-session-id', session.id);
		let issued = null;
		if (tok.revoked) {
			const active = activeToken(session);
			if (active && active.parent === tok.token) {
				// the client lost the previous answer: hand back the active token
				issued = active.token;
				st.counters.refresh_parent_returns++;
				res.setHeader('sb-auth-refresh-token-reuse', 'true');
				res.setHeader('sb-auth-refresh-token-reuse-cause', 'parent-of-active');
			} else if (Date.now() > tok.updated_at + cfg.reuse_interval * 1000) {
				// reuse outside the interval: the whole family (the session) is revoked
				deleteSession(session.id);
				st.counters.refresh_family_revocations++;
				throw bad('refresh_token_already_used', 'Invalid Refresh Token: Already Used');
			} else {
				st.counters.refresh_reuse_in_interval++;
				res.setHeader('sb-auth-refresh-token-reuse', 'true');
				res.setHeader('sb-auth-refresh-token-reuse-cause', 'reuse-interval');
			}
		}
		if (!issued) {
			tok.revoked = true;
			tok.updated_at = Date.now();
			issued = newRefreshToken(session, tok.token).token;
			st.counters.refresh_rotations++;
			res.setHeader('sb-auth-refresh-token-rotated', 'true');
		}
		res.setHeader('sb-auth-refresh-token-prefix', issued.slice(0, 5));
		session.refreshed_at = isoNow();
		return [200, sessionResponse(user, session, issued)];
	}

	async function otp(req) {
		const b = await jsonBody(req);
		const createUser = b.create_user !== false;
		if (b.email) {
			if (!EMAIL_RE.test(b.email)) throw bad('validation_failed', 'Unable to validate email address: invalid format');
			let u = findUserByEmail(b.email);
			let type = 'magiclink';
			if (!u) {
				if (!createUser || cfg.disable_signup) throw unprocessable('otp_disabled', 'Signups not allowed for otp');
				u = newUser({ email: b.email, data: b.data });
				st.counters.signups++;
				type = 'signup';
			} else if (!u.email_confirmed_at) type = 'signup';
			issueOtp(u, type, u.email);
			return [200, {}];
		}
		if (b.phone) {
			let u = findUserByPhone(b.phone);
			if (!u) {
				if (!createUser || cfg.disable_signup) throw unprocessable('otp_disabled', 'Signups not allowed for otp');
				u = newUser({ phone: b.phone, data: b.data });
				st.counters.signups++;
			}
			issueOtp(u, 'sms', u.phone);
			return [200, { message_id: `emu-${uuid()}` }];
		}
		throw bad('validation_failed', 'An email address or phone number is required to sign in with OTP');
	}

	async function verifyPost(req) {
		const b = await jsonBody(req);
		if (!b.type) throw bad('validation_failed', 'Verify requires a verification type');
		if (!b.token_hash && !b.token) throw bad('validation_failed', 'Verify requires either a token or a token hash');
		if (b.token && !b.token_hash && !b.email && !b.phone)
			throw bad('validation_failed', 'Only an email address or phone number should be provided on verify');
		const r = verifyOtp({ type: b.type, token: b.token, token_hash: b.token_hash, email: b.email, phone: b.phone });
		return [200, r.session];
	}

	function verifyGet(req, url, res) {
		const type = url.searchParams.get('type') || '';
		const tok = url.searchParams.get('token') || '';
		const redirect = url.searchParams.get('redirect_to') || cfg.site_url;
		let location;
		try {
			const r = verifyOtp({ type, token: tok });
			const p = new URLSearchParams({
				access_token: r.session.access_token, expires_at: String(r.session.expires_at),
				expires_in: String(r.session.expires_in), refresh_token: r.session.refresh_token,
				token_type: 'bearer', type,
			});
			location = `${redirect}#${p.toString()}`;
		} catch (e) {
			const p = new URLSearchParams({
				error: 'access_denied', error_code: e.code || 'otp_expired',
				error_description: 'Email link is invalid or has expired',
			});
			location = `${redirect}#${p.toString()}`;
		}
		res.writeHead(303, { Location: location, 'Content-Length': 0 });
		res.end();
	}

	async function logout(req, url) {
		const scope = url.searchParams.get('scope') ?? 'global';
		if (!['', 'global', 'local', 'others'].includes(scope))
			throw bad('validation_failed', `Unsupported logout scope "${scope}"`);
		const { user, session } = requireUser(req);
		st.counters.logouts++;
		for (const s of [...st.sessions.values()]) {
			if (s.user_id !== user.id) continue;
			if (!session || scope === '' || scope === 'global') deleteSession(s.id);
			else if (scope === 'local' && s.id === session.id) deleteSession(s.id);
			else if (scope === 'others' && s.id !== session.id) deleteSession(s.id);
		}
		return [204, undefined];
	}

	async function updateUser(req) {
		const { user } = requireUser(req);
		const b = await jsonBody(req);
		const t = isoNow();
		if (b.data !== undefined && b.data !== null) {
			if (typeof b.data !== 'object') throw bad('validation_failed', 'data must be an object');
			for (const [k, v] of Object.entries(b.data)) {
				if (v === null) delete user.user_metadata[k]; else user.user_metadata[k] = v;
			}
		}
		if (b.password !== undefined && b.password !== null) {
			checkPasswordStrength(b.password);
			if (user.password_hash && checkPassword(user, b.password))
				throw unprocessable('same_password', 'New password should be different from the old password.');
			user.password_hash = hashPassword(b.password);
		}
		if (b.email && String(b.email).toLowerCase() !== user.email) {
			if (!EMAIL_RE.test(b.email)) throw bad('validation_failed', 'Unable to validate email address: invalid format');
			if (findUserByEmail(b.email)) throw unprocessable('email_exists', 'A user with this email address has already been registered');
			if (cfg.autoconfirm) {
				user.email = String(b.email).toLowerCase();
				user.email_confirmed_at = t;
			} else {
				user.new_email = String(b.email).toLowerCase();
				user.email_change_sent_at = t;
				issueOtp(user, 'email_change', user.new_email);
			}
		}
		if (b.phone && b.phone !== user.phone) {
			if (findUserByPhone(b.phone)) throw unprocessable('phone_exists', 'A user with this phone number has already been registered');
			user.phone = b.phone;
			user.phone_confirmed_at = null;
			issueOtp(user, 'phone_change', user.phone);
		}
		user.updated_at = t;
		return [200, userJson(user)];
	}

	function settings() {
		const external = {
			anonymous_users: cfg.anonymous_users, apple: false, azure: false, bitbucket: false,
			discord: false, facebook: false, figma: false, fly: false, github: false, gitlab: false,
			google: false, keycloak: false, kakao: false, linkedin: false, linkedin_oidc: false,
			notion: false, spotify: false, slack: false, slack_oidc: false, workos: false,
			twitch: false, twitter: false, zoom: false, email: true, phone: true,
		};
		for (const p of cfg.providers) external[p] = true;
		return [200, {
			external, disable_signup: cfg.disable_signup, mailer_autoconfirm: cfg.autoconfirm,
			phone_autoconfirm: cfg.phone_autoconfirm, sms_provider: 'twilio', saml_enabled: false,
			saml_private_key_next_configured: false, passkeys_enabled: false,
		}];
	}

	function authorize(url, res) {
		const provider = url.searchParams.get('provider') || '';
		if (!cfg.providers.includes(provider))
			throw bad('validation_failed', `Unsupported provider: provider ${provider} could not be found`);
		const redirectTo = url.searchParams.get('redirect_to') || cfg.site_url;
		const state = signJwt({
			exp: nowSec() + 300, site_url: cfg.site_url, provider, referrer: redirectTo,
			flow_state_id: url.searchParams.get('code_challenge') ? uuid() : '',
		}, secret);
		const q = new URLSearchParams({
			client_id: 'supagate-emulator', redirect_uri: `${cfg.issuer}/callback`,
			response_type: 'code', state,
		});
		const scopes = url.searchParams.get('scopes');
		if (scopes) q.set('scope', scopes);
		// Never contacted: the emulator only builds the URL a browser would follow.
		const target = `https://${provider}.provider.invalid/oauth/authorize?${q.toString()}`;
		if (url.searchParams.get('skip_http_redirect') === 'true') return [200, { url: target }];
		res.writeHead(302, { Location: target, 'Content-Length': 0 });
		res.end();
		return null;
	}

	// The provider "returns" here. code is taken as the provider account's
	// e-mail when it contains '@'; the user is created on first use.
	function callback(url, res) {
		const v = verifyJwt(url.searchParams.get('state') || '', secret);
		if (!v.ok) throw bad('bad_oauth_state', 'OAuth callback with invalid state');
		const code = url.searchParams.get('code') || '';
		const email = code.includes('@') ? code.toLowerCase() : `oauth-user@${v.claims.provider}.example`;
		let u = findUserByEmail(email);
		if (!u) {
			u = newUser({ email, provider: v.claims.provider });
			u.email_confirmed_at = isoNow();
			st.counters.signups++;
		}
		const s = signIn(u, 'oauth');
		const p = new URLSearchParams({
			access_token: s.access_token, expires_at: String(s.expires_at), expires_in: String(s.expires_in),
			provider_token: `emu-${v.claims.provider}-token`, refresh_token: s.refresh_token, token_type: 'bearer',
		});
		res.writeHead(302, { Location: `${v.claims.referrer || cfg.site_url}#${p.toString()}`, 'Content-Length': 0 });
		res.end();
		return null;
	}

	async function factorsEnroll(req) {
		const { user, session, claims } = requireUser(req);
		if (claims.is_anonymous) throw forbidden('no_authorization', 'Anonymous user not allowed to perform these actions');
		if (!session) throw new HttpErr(500, 'unexpected_failure', 'A valid session and a registered user are required to enroll a factor');
		const b = await jsonBody(req);
		if (b.factor_type === 'phone') throw unprocessable('mfa_phone_enroll_not_enabled', 'MFA enroll is disabled for Phone');
		if (b.factor_type === 'webauthn') throw unprocessable('mfa_webauthn_enroll_not_enabled', 'MFA enroll is disabled for WebAuthn');
		if (b.factor_type !== 'totp') throw bad('validation_failed', 'factor_type needs to be totp, phone, or webauthn');
		const name = b.friendly_name ?? '';
		const mine = [...st.factors.values()].filter((f) => f.user_id === user.id);
		if (mine.some((f) => f.friendly_name === name))
			throw unprocessable('mfa_factor_name_conflict', `A factor with the friendly name "${name}" for this user already exists`);
		if (mine.length >= 10) throw unprocessable('too_many_enrolled_mfa_factors', 'Maximum number of verified factors reached, unenroll to continue');
		if (mine.some((f) => f.status === 'verified') && session.aal !== 'aal2')
			throw forbidden('insufficient_aal', 'AAL2 required to enroll a new factor');
		const secretB32 = base32Encode(crypto.randomBytes(20));
		const issuer = b.issuer || new URL(cfg.site_url).host;
		const t = isoNow();
		const f = {
			id: uuid(), user_id: user.id, friendly_name: name, factor_type: 'totp',
			status: 'unverified', secret: secretB32, created_at: t, updated_at: t,
		};
		st.factors.set(f.id, f);
		const label = encodeURIComponent(`${issuer}:${user.email}`);
		const uri = `otpauth://totp/${label}?algorithm=SHA1&digits=6&issuer=${encodeURIComponent(issuer)}&period=30&secret=${secretB32}`;
		// A placeholder SVG, not a scannable QR code (the secret and uri are real).
		const qr = `<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><desc>${uri.replace(/&/g, '&amp;')}</desc></svg>`;
		return [200, { id: f.id, type: 'totp', friendly_name: name, totp: { qr_code: qr, secret: secretB32, uri } }];
	}

	function loadFactor(user, id) {
		const f = st.factors.get(id);
		if (!f || f.user_id !== user.id) throw new HttpErr(404, 'mfa_factor_not_found', 'Factor not found');
		return f;
	}

	async function factorChallenge(req, id) {
		const { user, claims } = requireUser(req);
		if (claims.is_anonymous) throw forbidden('no_authorization', 'Anonymous user not allowed to perform these actions');
		const f = loadFactor(user, id);
		const c = { id: uuid(), factor_id: f.id, created_at: Date.now(), verified_at: null };
		st.challenges.set(c.id, c);
		return [200, { id: c.id, type: f.factor_type, expires_at: Math.floor(c.created_at / 1000) + cfg.challenge_lifetime }];
	}

	async function factorVerify(req, id) {
		const { user, session, claims } = requireUser(req);
		if (claims.is_anonymous) throw forbidden('no_authorization', 'Anonymous user not allowed to perform these actions');
		const f = loadFactor(user, id);
		const b = await jsonBody(req);
		if (!b.code) throw bad('validation_failed', 'Code needs to be non-empty');
		const c = st.challenges.get(b.challenge_id);
		if (!c || c.factor_id !== f.id) throw unprocessable('mfa_factor_not_found', 'MFA factor with the provided challenge ID not found');
		if (c.verified_at) throw unprocessable('mfa_ip_address_mismatch', 'Challenge and verify IP addresses mismatch.');
		if (Date.now() > c.created_at + cfg.challenge_lifetime * 1000) {
			st.challenges.delete(c.id);
			throw unprocessable('mfa_challenge_expired', `MFA challenge ${c.id} has expired, verify against another challenge or create a new challenge.`);
		}
		if (!totpValid(f.secret, String(b.code))) throw unprocessable('mfa_verification_failed', 'Invalid TOTP code entered');
		c.verified_at = Date.now();
		if (f.status !== 'verified') { f.status = 'verified'; f.updated_at = isoNow(); }
		// other unverified TOTP factors are dropped, as GoTrue does
		for (const [k, g] of st.factors) if (g.user_id === user.id && g.status !== 'verified') st.factors.delete(k);
		st.counters.mfa_verifies++;
		if (!session) throw new HttpErr(500, 'unexpected_failure', 'A valid session is required');
		session.aal = 'aal2';
		session.factor_id = f.id;
		session.amr = [{ method: 'totp', timestamp: nowSec() }, ...session.amr.filter((a) => a.method !== 'totp')];
		// sessions of this user below aal2 are invalidated
		for (const s of [...st.sessions.values()])
			if (s.user_id === user.id && s.id !== session.id && s.aal !== 'aal2') deleteSession(s.id);
		const old = activeToken(session);
		if (old) { old.revoked = true; old.updated_at = Date.now(); }
		const rt = newRefreshToken(session, old ? old.token : null);
		return [200, sessionResponse(user, session, rt.token)];
	}

	async function factorUnenroll(req, id) {
		const { user, session } = requireUser(req);
		const f = loadFactor(user, id);
		if (f.status === 'verified' && (!session || session.aal !== 'aal2'))
			throw unprocessable('insufficient_aal', 'AAL2 required to unenroll verified factor');
		st.factors.delete(f.id);
		return [200, { id: f.id }];
	}

	async function recover(req) {
		const b = await jsonBody(req);
		if (!b.email || !EMAIL_RE.test(b.email)) throw bad('validation_failed', 'Unable to validate email address: invalid format');
		const u = findUserByEmail(b.email);
		if (u) issueOtp(u, 'recovery', u.email);
		return [200, {}];
	}

	// ---------- error rendering ----------
	function sendError(req, res, e) {
		const versioned = (req.headers['x-supabase-api-version'] || '') >= API_VERSION;
		if (e instanceof OAuthErr) {
			const body = { error: e.error };
			if (e.message) body.error_description = e.message;
			return sendJson(res, 400, body);
		}
		if (!(e instanceof HttpErr)) {
			process.stderr.write(`auth emulator: ${e.stack || e}\n`);
			e = new HttpErr(500, 'unexpected_failure', 'Unexpected failure, please check server logs for more information');
		}
		const { status, code, message: msg, extra } = e;
		const headers = { 'x-sb-error-code': code };
		let body;
		if (versioned) {
			headers['X-Supabase-Api-Version'] = API_VERSION;
			body = { code, message: msg, ...(extra || {}) };
		} else {
			body = { code: status, error_code: code, msg, ...(extra || {}) };
			if (status >= 500) body.error_id = uuid();
		}
		sendJson(res, status, body, headers);
	}

	// ---------- control API ----------
	async function emuRoutes(req, res, url) {
		if (await control.handle(req, res, url)) return true;
		const p = url.pathname;
		if (p === '/_emu/otp' && req.method === 'GET') {
			const email = (url.searchParams.get('email') || '').toLowerCase();
			const phone = url.searchParams.get('phone') || '';
			const addr = email || phone;
			const o = [...st.otps].reverse().find((x) => x.address === addr);
			if (!o) { sendJson(res, 404, { message: `no OTP issued for ${addr}` }); return true; }
			sendJson(res, 200, { email: email || undefined, phone: phone || undefined, type: o.type, code: o.code, token: o.code, token_hash: o.token_hash, used: o.used, created_at: new Date(o.created_at).toISOString() });
			return true;
		}
		if (p === '/_emu/revoke' && req.method === 'POST') {
			let b;
			try { b = JSON.parse((await readBody(req)).toString('utf8') || '{}'); } catch { b = {}; }
			let n = 0;
			for (const s of [...st.sessions.values()]) {
				if ((b.session_id && s.id === b.session_id) || (b.user_id && s.user_id === b.user_id)) { deleteSession(s.id); n++; }
			}
			if (!b.session_id && !b.user_id) { sendJson(res, 400, { message: 'session_id or user_id required' }); return true; }
			sendJson(res, 200, { revoked_sessions: n });
			return true;
		}
		if (p === '/_emu/config' && req.method === 'GET') { sendJson(res, 200, cfg); return true; }
		if (p === '/_emu/config' && req.method === 'POST') {
			let b;
			try { b = JSON.parse((await readBody(req)).toString('utf8') || '{}'); } catch { sendJson(res, 400, { message: 'invalid JSON' }); return true; }
			for (const [k, v] of Object.entries(b)) {
				if (!(k in cfg)) { sendJson(res, 400, { message: `unknown config key ${k}` }); return true; }
				cfg[k] = typeof cfg[k] === 'number' ? Number(v) : typeof cfg[k] === 'boolean' ? parseBool(v, cfg[k]) : v;
			}
			sendJson(res, 200, cfg);
			return true;
		}
		if (p === '/_emu/state' && req.method === 'GET') {
			sendJson(res, 200, {
				...st.counters, users: st.users.size, sessions: st.sessions.size,
				refresh_tokens: st.tokens.size,
				active_refresh_tokens: [...st.tokens.values()].filter((t) => !t.revoked).length,
				factors: st.factors.size,
				session_list: [...st.sessions.values()].map((s) => ({ id: s.id, user_id: s.user_id, aal: s.aal, created_at: s.created_at, refreshed_at: s.refreshed_at })),
			});
			return true;
		}
		if (p === '/_emu/users' && req.method === 'POST') {
			// seed a confirmed user: {email, password, data}
			let b;
			try { b = JSON.parse((await readBody(req)).toString('utf8') || '{}'); } catch { b = {}; }
			let u = b.email ? findUserByEmail(b.email) : null;
			if (!u) u = newUser({ email: b.email, phone: b.phone, password: b.password, data: b.data });
			else if (b.password) u.password_hash = hashPassword(b.password);
			if (u.email) u.email_confirmed_at = u.email_confirmed_at || isoNow();
			if (u.phone) u.phone_confirmed_at = u.phone_confirmed_at || isoNow();
			sendJson(res, 200, userJson(u));
			return true;
		}
		sendJson(res, 404, { message: 'unknown control endpoint' });
		return true;
	}

	// ---------- dispatcher ----------
	async function route(req, res, url, p) {
		const m = req.method;
		if (p === '/health' && m === 'GET') return [200, { version: 'emulator', name: 'GoTrue', description: 'GoTrue emulator for supagate tests' }];
		if (p === '/settings' && m === 'GET') return settings();
		if (p === '/.well-known/jwks.json' && m === 'GET') return [200, { keys: [] }, { 'Cache-Control': 'public, max-age=600' }];
		if (p === '/signup' && m === 'POST') return signup(req, url);
		if (p === '/token' && m === 'POST') return token(req, url, res);
		if (p === '/otp' && m === 'POST') return otp(req);
		if (p === '/magiclink' && m === 'POST') return otp(req);
		if (p === '/verify' && m === 'POST') return verifyPost(req);
		if (p === '/verify' && m === 'GET') { verifyGet(req, url, res); return null; }
		if (p === '/recover' && m === 'POST') return recover(req);
		if (p === '/logout' && m === 'POST') return logout(req, url);
		if (p === '/user' && m === 'GET') return [200, userJson(requireUser(req).user)];
		if (p === '/user' && m === 'PUT') return updateUser(req);
		if (p === '/reauthenticate' && m === 'GET') {
			const { user } = requireUser(req);
			issueOtp(user, 'reauthentication', user.email || user.phone);
			return [200, {}];
		}
		if (p === '/authorize' && m === 'GET') return authorize(url, res);
		if (p === '/callback' && m === 'GET') return callback(url, res);
		if (p === '/factors' && m === 'POST') return factorsEnroll(req);
		let fm = /^\/factors\/([^/]+)\/challenge$/.exec(p);
		if (fm && m === 'POST') return factorChallenge(req, fm[1]);
		fm = /^\/factors\/([^/]+)\/verify$/.exec(p);
		if (fm && m === 'POST') return factorVerify(req, fm[1]);
		fm = /^\/factors\/([^/]+)$/.exec(p);
		if (fm && m === 'DELETE') return factorUnenroll(req, fm[1]);
		throw new HttpErr(404, 'not_found', 'Not Found');
	}

	async function handler(req, res) {
		let url;
		try { url = new URL(req.url, 'http://emulator'); } catch { sendJson(res, 400, { message: 'bad url' }); return; }
		if (url.pathname.startsWith('/_emu/')) {
			try { await emuRoutes(req, res, url); } catch (e) { sendJson(res, 500, { message: String(e) }); }
			return;
		}
		const p = url.pathname.startsWith('/auth/v1/') || url.pathname === '/auth/v1'
			? url.pathname.slice('/auth/v1'.length) || '/' : url.pathname;
		const entry = control.log({
			time: isoNow(), method: req.method, path: url.pathname, service_path: p,
			query: Object.fromEntries(url.searchParams), raw_query: url.search,
			headers: headerObject(req), body: null, status: null,
		});
		try {
			req.rawBody = await readBody(req);
		} catch {
			sendError(req, res, new HttpErr(413, 'request_too_large', 'Request body too large'));
			return;
		}
		entry.body = req.rawBody.length ? req.rawBody.toString('utf8') : null;
		res.on('finish', () => { entry.status = res.statusCode; });
		const fault = control.takeFault(url.pathname, p);
		if (fault) entry.fault = fault.mode;
		const consumed = await applyFault(fault, req, res,
			(r, status, f) => f.error_code
				// e.g. 409 conflict, GoTrue's answer to concurrent refreshes of one session
				? sendError(req, r, new HttpErr(status, f.error_code, f.message || 'emulated upstream fault'))
				: sendJson(r, status, { code: status, error_code: 'unexpected_failure', msg: 'emulated upstream fault' }, { 'x-sb-error-code': 'unexpected_failure' }),
			(r, retry) => {
				r.setHeader('Retry-After', retry);
				sendError(req, r, new HttpErr(429, 'over_request_rate_limit', 'Request rate limit reached'));
			});
		if (consumed) return;
		if (!OPEN_ROUTES.includes(p)) {
			const k = checkApiKey(req, url);
			if (k) { sendJson(res, k.status, k.body, k.body.message === 'No API key found in request' ? { 'WWW-Authenticate': 'Key realm="kong"' } : {}); return; }
		}
		try {
			const out = await route(req, res, url, p);
			if (!out || res.headersSent) return;
			const [status, body, headers] = out;
			if (status === 204) { res.writeHead(204, headers || {}); res.end(); return; }
			sendJson(res, status, body, headers || {});
		} catch (e) {
			if (res.headersSent) { res.destroy(); return; }
			sendError(req, res, e);
		}
	}

	return { handler, state: st, cfg, control, secret };
}

export async function startAuth(opts = {}) {
	const app = createAuth(opts);
	const inst = await listen(app.handler, { host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
	return { ...inst, app };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
	const opts = parseArgs(process.argv.slice(2), { host: '127.0.0.1', port: '0' });
	runCli(startAuth, { ...opts, name: 'auth-emulator' }).catch((e) => {
		process.stderr.write(`auth-emulator: ${e.message}\n`);
		process.exit(1);
	});
}
