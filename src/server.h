/* server: the libmicrohttpd side: listen sockets, intake, response emit */
#ifndef SUPAGATE_SERVER_H
#define SUPAGATE_SERVER_H

#include <stddef.h>

struct conf;
struct request;

/* bind every listen address of conf and start serving; -1 on failure */
int server_setup(struct conf *);
void server_teardown(void);
/* stop accepting new connections (drain on shutdown) */
void server_quiesce(void);
/* open client connections */
size_t server_connections(void);
/* resume a request's connection if it is suspended */
void server_wake(struct request *);
/* the value of a client request header, or NULL */
const char *server_header(struct request *, const char *name);
/* how many times a client request header occurs */
int server_header_count(struct request *, const char *name);
/*
 * Call cb (may be NULL) for each client request header in order; -1 if
 * cb stopped the walk by returning non-zero, -2 if a name or value holds
 * a NUL byte, else 0.
 */
int server_header_each(struct request *,
    int (*cb)(void *arg, const char *name, const char *value), void *arg);
/* open connections from the same peer address as this request */
size_t server_peer_connections(struct request *);

#endif
