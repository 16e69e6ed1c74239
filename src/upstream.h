/* upstream: HTTP transfers on the curl multi-socket API in the evloop */
#ifndef SUPAGATE_UPSTREAM_H
#define SUPAGATE_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

/* returned by on_data/on_read to stop the flow until upstream_unpause */
#define UPSTREAM_PAUSE	((size_t)-1)
/* returned by on_data/on_read to fail the transfer */
#define UPSTREAM_ABORT	((size_t)-2)

enum upstream_result {
	UPSTREAM_OK,
	UPSTREAM_ERR_CONNECT,	/* refused, unresolvable, TLS failure */
	UPSTREAM_ERR_TIMEOUT,
	UPSTREAM_ERR_PROTOCOL,	/* malformed or cut-off response */
	UPSTREAM_ERR_ABORTED,	/* a callback returned UPSTREAM_ABORT */
	UPSTREAM_ERR_NOMEM,
};

struct upstream_cbs {
	/*
	 * Final response head: status and the raw header lines
	 * ("Name: value\r\n" each, status line excluded).  Return 0, or -1
	 * to abort.
	 */
	int	(*on_head)(void *arg, int status, const char *hdrs, size_t len);
	/* body bytes: return n, UPSTREAM_PAUSE or UPSTREAM_ABORT */
	size_t	(*on_data)(void *arg, const char *, size_t n);
	/* request body: bytes written, 0 at the end, PAUSE or ABORT */
	size_t	(*on_read)(void *arg, char *, size_t n);
	/*
	 * Rewind the request body to its start (curl retries a request on a
	 * fresh connection when a reused one turns out dead): 0 if the body
	 * can be sent again from the beginning, -1 if not.
	 */
	int	(*on_rewind)(void *arg);
	/* the transfer is over; the xfer is freed right after */
	void	(*on_done)(void *arg, enum upstream_result);
};

struct upstream_req {
	const char		*method;
	const char		*url;
	const char *const	*headers;	/* "Name: value" lines */
	size_t			 nheaders;
	int			 has_body;
	int64_t			 body_len;	/* -1: unknown (chunked) */
	int64_t			 connect_timeout_ms;
	const char		*ca_file;	/* NULL: system store */
	const char		*user_agent;
};

struct upstream_xfer;

int upstream_setup(void);
void upstream_teardown(void);
/* start a transfer; NULL on failure (nothing is called back then) */
struct upstream_xfer *upstream_start(const struct upstream_req *,
    const struct upstream_cbs *, void *arg);
/* resume a transfer paused by on_data or on_read */
void upstream_unpause(struct upstream_xfer *);
/* stop and free a transfer; no more callbacks; not from a callback */
void upstream_abort(struct upstream_xfer *);
/* transfers in progress */
size_t upstream_active(void);
/* a short description of the last error of this transfer */
const char *upstream_strerror(const struct upstream_xfer *);

#endif
