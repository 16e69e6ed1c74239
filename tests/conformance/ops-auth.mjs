// ops-auth.mjs: Auth (GoTrue) operations: sign-up, password, OTP, OAuth URL,
// sessions, user updates, MFA (TOTP per RFC 6238), sign-out.
import { au, fetchDesc, totp } from './lib.mjs';
import { ok, errCode, all } from './ops-rest.mjs';

const PASSWORD = 'Conformance-pass-1';
const hasSession = (v) => (v.data && v.data.session && v.data.session.access_token ? null : 'no session in the answer');
const op = (name, run, expect = ok) => ({ area: 'auth', name, run, expect });
// auth-js turns a 403 session_not_found into AuthSessionMissingError.
const sessionGone = (v) => (v.error && (v.error.code === 'session_not_found' || v.error.name === 'AuthSessionMissingError')
  ? null : `expected session_not_found: ${JSON.stringify(v.error)}`);

// A TOTP code that stays valid for the next few seconds: near the end of a
// step, wait for the next one (the emulator accepts ±1 step anyway).
async function freshTotp(secret) {
  const left = 30 - ((Date.now() / 1000) % 30);
  if (left < 2) await new Promise((r) => setTimeout(r, left * 1000 + 100));
  return totp(secret);
}

export const authOps = [
  op('signUp', async (c) => {
    c.s.signup = c.client();
    return au(await c.s.signup.auth.signUp({ email: c.email('u1'), password: PASSWORD, options: { data: { plan: 'free' } } }));
  }, all(ok, hasSession)),
  op('signUp (error: already registered)', async (c) =>
    au(await c.client().auth.signUp({ email: c.email('u1'), password: PASSWORD })), errCode('user_already_exists')),
  op('signUp (error: weak password)', async (c) =>
    au(await c.client().auth.signUp({ email: c.email('weak'), password: '123' })), errCode('weak_password')),
  op('signUp (error: invalid email)', async (c) =>
    au(await c.client().auth.signUp({ email: 'not-an-email', password: PASSWORD })), (v) => (v.error ? null : 'expected an error')),
  op('signInWithPassword (error: wrong password)', async (c) =>
    au(await c.client().auth.signInWithPassword({ email: c.email('u1'), password: 'wrong-password' })), errCode('invalid_credentials')),
  op('signInWithPassword', async (c) => {
    c.s.user = c.client();
    const r = await c.s.user.auth.signInWithPassword({ email: c.email('u1'), password: PASSWORD });
    c.track(r.data && r.data.session);
    return au(r);
  }, all(ok, hasSession)),
  op('getSession', async (c) => au(await c.s.user.auth.getSession()), all(ok, hasSession)),
  op('getUser', async (c) => au(await c.s.user.auth.getUser()),
    all(ok, (v, c) => (v.data.user && v.data.user.email === c.email('u1') ? null : 'wrong user'))),
  op('getUser (error: invalid JWT)', async (c) => au(await c.client().auth.getUser('not.a.jwt')), errCode('bad_jwt')),
  op('updateUser', async (c) => au(await c.s.user.auth.updateUser({ data: { theme: 'dark', plan: null } })),
    all(ok, (v) => (v.data.user && v.data.user.user_metadata.theme === 'dark' ? null : 'metadata not updated'))),
  op('refreshSession', async (c) => {
    const before = (await c.s.user.auth.getSession()).data.session;
    const r = await c.s.user.auth.refreshSession();
    c.track(r.data && r.data.session);
    const v = au(r);
    v.rotated = !!(r.data.session && before && r.data.session.refresh_token !== before.refresh_token);
    return v;
  }, all(ok, hasSession, (v) => (v.rotated ? null : 'refresh token was not rotated'))),
  op('refreshSession (error: unknown refresh token)', async (c) =>
    au(await c.client().auth.refreshSession({ refresh_token: 'aaaaaaaaaaaaaaaaaaaaaa' })), errCode('refresh_token_not_found')),
  op('setSession', async (c) => {
    const other = c.client();
    const r = await other.auth.signInWithPassword({ email: c.email('u1'), password: PASSWORD });
    c.track(r.data && r.data.session);
    const { access_token, refresh_token } = r.data.session;
    c.s.second = c.client();
    c.s.secondToken = access_token;
    return au(await c.s.second.auth.setSession({ access_token, refresh_token }));
  }, all(ok, hasSession)),
  op('setSession (error: invalid token)', async (c) =>
    au(await c.client().auth.setSession({ access_token: 'bad', refresh_token: 'bad' })), (v) => (v.error ? null : 'expected an error')),
  op('signOut (scope local)', async (c) => au(await c.s.second.auth.signOut({ scope: 'local' }))),
  op('getUser after signOut (error: session gone)', async (c) =>
    au(await c.client().auth.getUser(c.s.secondToken)), sessionGone),
  op('getUser still signed in (other session)', async (c) => au(await c.s.user.auth.getUser()), ok),

  op('signInWithOtp', async (c) => au(await c.client().auth.signInWithOtp({ email: c.email('otp') }))),
  op('verifyOtp (error: wrong code)', async (c) =>
    au(await c.client().auth.verifyOtp({ email: c.email('otp'), token: '000000', type: 'email' })), errCode('otp_expired')),
  op('verifyOtp', async (c) => {
    const res = await fetch(`${c.authCtl}/_emu/otp?email=${encodeURIComponent(c.email('otp'))}`);
    const otp = await res.json();
    if (!otp.code) throw new Error(`no OTP from the emulator: ${JSON.stringify(otp)}`);
    const client = c.client();
    const r = await client.auth.verifyOtp({ email: c.email('otp'), token: otp.code, type: 'email' });
    c.track(r.data && r.data.session);
    return au(r);
  }, all(ok, hasSession)),
  op('signInWithOAuth (URL produced)', async (c) => {
    const r = await c.client().auth.signInWithOAuth({
      provider: 'github', options: { redirectTo: 'http://localhost:3000/welcome', scopes: 'repo', skipBrowserRedirect: true },
    });
    c.s.oauthUrl = r.data && r.data.url;
    return au(r);
  }, all(ok, (v, c) => (v.data.url && v.data.url.startsWith(`${c.base}/auth/v1/authorize?`) ? null : `URL not under the client's base: ${v.data.url}`))),
  op('signInWithOAuth URL fetched (302 to the provider, not followed)', async (c) => fetchDesc(c.s.oauthUrl),
    (v) => (v.status === 302 && /provider\.invalid/.test(v.location || '') ? null : `expected a 302 to the provider: ${JSON.stringify(v)}`)),

  // MFA on a user of its own (a verified factor ends the user's aal1 sessions).
  op('mfa: sign up the MFA user', async (c) => {
    c.s.mfa = c.client();
    const r = await c.s.mfa.auth.signUp({ email: c.email('mfa'), password: PASSWORD });
    c.track(r.data && r.data.session);
    return au(r);
  }, all(ok, hasSession)),
  op('mfa.getAuthenticatorAssuranceLevel (aal1)', async (c) => au(await c.s.mfa.auth.mfa.getAuthenticatorAssuranceLevel()),
    all(ok, (v) => (v.data.currentLevel === 'aal1' ? null : `expected aal1: ${JSON.stringify(v.data)}`))),
  op('mfa.enroll', async (c) => {
    const r = await c.s.mfa.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'phone' });
    c.s.factor = r.data;
    return au(r);
  }, all(ok, (v) => (v.data && v.data.totp && /^[A-Z2-7]+=*$/.test(v.data.totp.secret) ? null : 'no TOTP secret'))),
  op('mfa.enroll (error: name conflict)', async (c) =>
    au(await c.s.mfa.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'phone' })), errCode('mfa_factor_name_conflict')),
  op('mfa.listFactors', async (c) => au(await c.s.mfa.auth.mfa.listFactors())),
  op('mfa.challenge', async (c) => {
    const r = await c.s.mfa.auth.mfa.challenge({ factorId: c.s.factor.id });
    c.s.challenge = r.data;
    return au(r);
  }, all(ok, (v) => (v.data && v.data.id ? null : 'no challenge id'))),
  op('mfa.verify (error: wrong code)', async (c) => {
    const ch = await c.s.mfa.auth.mfa.challenge({ factorId: c.s.factor.id });
    const good = totp(c.s.factor.totp.secret);
    const wrong = good === '123456' ? '654321' : '123456';
    return au(await c.s.mfa.auth.mfa.verify({ factorId: c.s.factor.id, challengeId: ch.data.id, code: wrong }));
  }, errCode('mfa_verification_failed')),
  op('mfa.verify', async (c) => {
    const code = await freshTotp(c.s.factor.totp.secret);
    const r = await c.s.mfa.auth.mfa.verify({ factorId: c.s.factor.id, challengeId: c.s.challenge.id, code });
    c.track(r.data);
    return au(r);
  }, all(ok, (v) => (v.data && v.data.access_token ? null : 'no aal2 session'))),
  op('mfa.getAuthenticatorAssuranceLevel (aal2)', async (c) => au(await c.s.mfa.auth.mfa.getAuthenticatorAssuranceLevel()),
    all(ok, (v) => (v.data.currentLevel === 'aal2' ? null : `expected aal2: ${JSON.stringify(v.data)}`))),
  op('mfa.challengeAndVerify', async (c) => {
    const e = await c.s.mfa.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'laptop' });
    if (e.error) return { enroll: au(e) };
    c.s.factor2 = e.data;
    const code = await freshTotp(e.data.totp.secret);
    const r = await c.s.mfa.auth.mfa.challengeAndVerify({ factorId: e.data.id, code });
    c.track(r.data);
    return au(r);
  }, all(ok, (v) => (v.data && v.data.access_token ? null : 'no session'))),
  op('mfa.unenroll', async (c) => au(await c.s.mfa.auth.mfa.unenroll({ factorId: c.s.factor2.id }))),
  op('mfa.unenroll (error: unknown factor)', async (c) =>
    au(await c.s.mfa.auth.mfa.unenroll({ factorId: '00000000-0000-0000-0000-000000000000' })), (v) => (v.error ? null : 'expected an error')),
  op('mfa.listFactors after unenroll', async (c) => au(await c.s.mfa.auth.mfa.listFactors()),
    all(ok, (v) => (v.data.totp.length === 1 ? null : `expected one factor: ${JSON.stringify(v.data)}`))),
  op('signOut (MFA user, global)', async (c) => au(await c.s.mfa.auth.signOut())),
];

// Run after the user's rest and storage operations.
export const authTailOps = [
  op('signOut', async (c) => {
    c.s.userToken = (await c.s.user.auth.getSession()).data.session.access_token;
    return au(await c.s.user.auth.signOut());
  }),
  op('getSession after signOut', async (c) => au(await c.s.user.auth.getSession()),
    all(ok, (v) => (v.data.session === null ? null : 'session still there'))),
  op('getUser with the signed-out token (error)', async (c) => au(await c.client().auth.getUser(c.s.userToken)),
    sessionGone),
];
