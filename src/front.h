/*
 * front: the interface between the two halves of the server module,
 * server.c (the libmicrohttpd side) and front.c (supagate's own HTTP/1.1
 * side).  Only those two files include it; the rest of the daemon uses
 * server.h.
 */
#ifndef SUPAGATE_FRONT_H
#define SUPAGATE_FRONT_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

struct conf;
struct front;
struct head_line;
struct MHD_Connection;
struct request;
struct sconn;

#define SREQ_MAGIC		0x73726571u
#define SERVER_CLIENT_TIMEOUT_S	60
#define SERVER_DISCARD_MAX	(8 * 1024 * 1024)

/* the server's half of a request */
struct sreq {
	unsigned		 magic;
	struct request		*r;
	struct MHD_Connection	*conn;
	int			 begun;
	int			 body_ended;
	int			 suspended;
	uint64_t		 discarded;	/* body bytes dropped */
	int			 watch_fd;	/* watched for hang-up */
	const char		*uri_end;	/* where the target ended */
	struct sconn		*sc;		/* its connection */
	/* a request read by supagate itself (see front.c) */
	struct front		*fc;
	struct fhdr		*hdr;		/* its fields, parsed in place */
	size_t			 nhdr;
	int			 http10;
};

/* one field of a request head that supagate parsed itself */
struct fhdr {
	const char	*name;
	const char	*value;
};

/* open connections per client address, for max-connections-per-peer */
struct peer {
	struct sockaddr_storage	 addr;
	size_t			 nconn;
	struct peer		*next;
};

/*
 * Walk the response head r->head for the lines relayed to the client:
 * hop-by-hop ones (and those the upstream's Connection header names) are
 * skipped.  name is a NUL-terminated copy; 1 for a line, 0 at the end.
 */
struct relay_walk {
	const char	*p;
	char		 connection[1024];
	int		 has_conn;
	char		 name[256];
};

/* server.c, for front.c */

/* free s (either side's): its hang-up watch, its proxy request and s */
void server_sreq_free(struct sreq *s);
/* the entry of sa's address, made with nconn 0 if new; NULL on ENOMEM */
struct peer *server_peer_get(const struct sockaddr *sa);
/* one connection of p (may be NULL) fewer; p is freed when none is left */
void server_peer_put(struct peer *p);
/* start walking the response head head (see struct relay_walk) */
void server_relay_begin(struct relay_walk *w, const char *head);
/* the next relayed line into l (its name in w->name): 1, or 0 at the end */
int server_relay_next(struct relay_walk *w, struct head_line *l);
/* the reason phrase of status, for a status line */
const char *server_reason(int status);
/*
 * Give fd, accepted on listen address number listen_idx, to
 * libmicrohttpd, which owns it from now on (and closes it on failure).
 */
void server_handoff(size_t listen_idx, int fd, const struct sockaddr *sa,
    socklen_t salen);

/* front.c, for server.c */

/* allocate the peek buffer and start the gate sweep; -1 on failure */
int front_setup(const struct conf *c);
/* close every front connection; free what front_setup made */
void front_teardown(void);
/* close idle connections now, busy ones after their answer */
void front_quiesce(void);
/* evloop callback of the listen socket lfd, number (uintptr_t)arg: accept */
void front_listen_ready_cb(int lfd, unsigned events, void *arg);
/* open front connections (lingering ones not counted) */
size_t front_connections(void);
/* open connections from fc's peer while fc has a request, else 0 */
size_t front_peer_connections(const struct front *fc);
/* queue fc to be resumed on the next turn of the loop (not if lingering) */
void front_wake(struct front *fc);
/* resume the connections woken before this call; later wakes wait */
void front_resume_woken(void);
/* 1 if woken connections wait to be resumed */
int front_has_woken(void);

#endif
