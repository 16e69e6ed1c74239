/* session: supagate's own sign-in and refresh (auth-mode session) */
#ifndef SUPAGATE_SESSION_H
#define SUPAGATE_SESSION_H

#include <stdint.h>

struct conf;
struct sbuf;

enum session_state {
	SESSION_NONE,		/* not session mode, or not signed in yet */
	SESSION_VALID,
	SESSION_REFRESHING,
	SESSION_FAILED,		/* lost: needs a new sign-in */
};

/*
 * Session mode only: load the stored session from state-dir (decrypting
 * it), else sign in with the configured password or refresh token file;
 * arm the refresh timer.  Sign-in and refresh run on the event loop
 * through the upstream module, never blocking.  -1 on a fatal setup
 * error (unreadable key file, ...), logged.
 */
int session_setup(const struct conf *);
void session_teardown(void);
enum session_state session_state(void);
/* wall-clock expiry of the current access token, 0 if none */
int64_t session_expires_at(void);

typedef void session_ready_cb(void *arg);
/*
 * The access token to send now (borrowed: copy it before returning to
 * the event loop), or NULL.  With NULL, *wait says: 1, a sign-in or
 * refresh is under way and cb(arg) will be called once when it ends
 * (then ask again); 0, the session is lost (answer 503 session_lost).
 */
const char *session_token(session_ready_cb *cb, void *arg, int *wait);
/* forget a waiting callback (the request went away) */
void session_unwait(void *arg);
/*
 * Upstream rejected token as expired (401): refresh now, single flight,
 * unless the current token is already newer than token.
 */
void session_token_rejected(const char *token);
/* append the members of the health "session" object, e.g.
 * "\"state\":\"valid\",\"expires_at\":1764000000" */
void session_health(struct sbuf *);
/*
 * 1 if session_token() would hand out a token right now (health:
 * ready), also while a refresh is retried with the current token
 */
int session_usable(void);
/* the signed-in user's id (the JWT sub), NULL if none */
const char *session_user_id(void);
/* state names for health and logs */
const char *session_state_name(enum session_state);

/*
 * "supagate login -f file": read an email and password (or a refresh
 * token) from the terminal or stdin, sign in, store the session in
 * state-dir, exit status 0 on success.
 */
int session_login_main(const struct conf *);

#endif
