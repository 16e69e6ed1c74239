/*
 * jwks: the project's JWK set fetched from Auth (jwt-jwks-fetch on):
 * GET <auth root>/.well-known/jwks.json at start, every 10 minutes, and
 * at most once per 30 s when a token names a kid no key has.  The last
 * good set is kept in state-dir, so a restart without network still
 * verifies; a failed fetch keeps the set in use.
 */
#ifndef SUPAGATE_JWKS_H
#define SUPAGATE_JWKS_H

#include <stdint.h>

struct conf;
struct jwk_set;

#define JWKS_REFRESH_MS		(10 * 60 * 1000)
#define JWKS_RETRY_MS		(60 * 1000)	/* after a failed fetch */
#define JWKS_KID_MIN_MS		(30 * 1000)	/* between kid-driven fetches */
#define JWKS_STATE_FILE		"jwks.json"

/*
 * Start with (or, on reload, switch to) c: with jwt-jwks-fetch off drop
 * the fetched set; with it on load the stored set and fetch now.  0, or
 * -1 if fetching cannot work with c (logged; the daemon goes on).
 */
int jwks_setup(const struct conf *c);
void jwks_teardown(void);
/* the fetched set, NULL if none; valid until the next loop turn */
const struct jwk_set *jwks_current(void);
/* changes whenever the fetched set does */
uint64_t jwks_generation(void);
/* a token named a kid no key has: fetch again unless done lately */
void jwks_unknown_kid(void);

#endif
