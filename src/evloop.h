/* evloop: one epoll set, fd callbacks, millisecond timers, signals */
#ifndef SUPAGATE_EVLOOP_H
#define SUPAGATE_EVLOOP_H

#include <stdint.h>

#define EVLOOP_IN	0x1
#define EVLOOP_OUT	0x2
#define EVLOOP_HUP	0x4	/* peer closed (EPOLLRDHUP, HUP, ERR) */
#define EVLOOP_EDGE	0x8	/* edge-triggered: report new readiness only */

typedef void evloop_fd_cb(int fd, unsigned events, void *arg);
typedef void evloop_timer_cb(void *arg);
/* called once per loop turn; returns the ms it may sleep, -1 for no limit */
typedef int64_t evloop_hook_cb(void *arg);
typedef void evloop_signal_cb(int signo, void *arg);

struct evloop_timer {
	int64_t		 due_ms;	/* monotonic; -1 when not armed */
	evloop_timer_cb	*cb;
	void		*arg;
	struct evloop_timer *next;
};

int evloop_setup(void);
void evloop_teardown(void);
/* monotonic milliseconds */
int64_t evloop_now_ms(void);
/* wall clock seconds */
int64_t evloop_wall_s(void);
/* watch fd for EVLOOP_IN/OUT; replaces an earlier registration */
int evloop_watch(int fd, unsigned events, evloop_fd_cb *, void *arg);
void evloop_unwatch(int fd);
/* unwatch an fd about to be closed, of which no duplicate exists */
void evloop_forget(int fd);
/* arm (or re-arm) a timer to fire after ms; a timer fires once */
void evloop_timer_arm(struct evloop_timer *, int64_t ms, evloop_timer_cb *,
    void *arg);
void evloop_timer_disarm(struct evloop_timer *);
/* a hook run every turn before sleeping (at most 4) */
int evloop_hook(evloop_hook_cb *, void *arg);
/* route these signals (HUP, TERM, INT) to cb through a signalfd */
int evloop_signals(evloop_signal_cb *, void *arg);
/* run until evloop_stop(); a later call runs again */
int evloop_run(void);
/* poll up to max_us before sleeping while events come that often; 0: off */
void evloop_busy_poll(int64_t max_us);
int64_t evloop_busy_poll_window(void);	/* the current poll, us */
/* polls that found events, and polls that found nothing, since start */
void evloop_busy_poll_counts(uint64_t *caught, uint64_t *empty);
void evloop_stop(void);

#endif
