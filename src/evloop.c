/* evloop: epoll, timers and a signalfd on the one loop thread */
#include "config.h"

#include <sys/epoll.h>
#include <sys/signalfd.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evloop.h"
#include "log.h"

#define EVLOOP_MAXFD	65536
#define EVLOOP_HOOKS	4

struct watch {
	evloop_fd_cb	*cb;
	void		*arg;
	unsigned	 events;
	int		 active;
};

static int		 epfd = -1;
static int		 sigfd = -1;
static struct watch	*watches;
static struct evloop_timer *timers;
static int		 stopping;
static struct {
	evloop_hook_cb	*cb;
	void		*arg;
}			 hooks[EVLOOP_HOOKS];
static int		 nhooks;
static evloop_signal_cb	*sig_cb;
static void		*sig_arg;

/*
 * Polling before sleeping.  On a virtual machine a sleeping CPU is halted,
 * and waking it costs more than a loopback round trip: when events keep
 * arriving within poll_max_us of each other, asking epoll again (and
 * yielding to whoever else is runnable) for that long before blocking
 * answers sooner and spends less CPU than sleeping.
 *
 * Polling starts when a blocking wait ended with an event within twice
 * the limit (the wait includes the wake-up polling saves), and stops
 * after POLL_MISSES polls in a row caught nothing.  Each time polling
 * stops without having caught anything, the next start waits for twice
 * as many such short waits (up to POLL_BACKOFF_MAX), so traffic whose
 * gaps sit just past the limit costs next to nothing; one catch resets
 * that.  An idle or slowly used daemon never polls.
 */
#define POLL_MISSES		4
#define POLL_BACKOFF_MAX	1024

static int64_t		 poll_max_us;
static int		 polling;	/* polling now */
static int		 poll_caught;	/* something caught since it started */
static int		 poll_misses;	/* polls in a row that caught nothing */
static int		 poll_backoff;	/* short waits needed to start again */
static int		 poll_skip;	/* short waits still to see */
static uint64_t		 poll_ncaught, poll_nempty;	/* for the metrics */

static int64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
evloop_now_ms(void)
{
	return now_us() / 1000;
}

void
evloop_busy_poll(int64_t max_us)
{
	poll_max_us = max_us > 0 ? max_us : 0;
	polling = poll_caught = poll_misses = 0;
	poll_backoff = poll_skip = 0;
}

int64_t
evloop_busy_poll_window(void)
{
	return polling ? poll_max_us : 0;
}

void
evloop_busy_poll_counts(uint64_t *caught, uint64_t *empty)
{
	*caught = poll_ncaught;
	*empty = poll_nempty;
}

/* epoll_wait() for up to wait_ms, polling first while that pays */
static int
wait_events(struct epoll_event *evs, int nevs, int64_t wait_ms)
{
	int64_t	t0, spin, waited;
	int	n;

	if (poll_max_us == 0 || wait_ms <= 0)
		return epoll_wait(epfd, evs, nevs, (int)wait_ms);
	t0 = now_us();
	if (polling) {
		spin = poll_max_us < wait_ms * 1000 ? poll_max_us :
		    wait_ms * 1000;
		do {
			if ((n = epoll_wait(epfd, evs, nevs, 0)) != 0) {
				if (n > 0) {
					poll_ncaught++;
					poll_caught = 1;
					poll_misses = 0;
					poll_backoff = 0;
				}
				return n;
			}
			sched_yield();
		} while ((waited = now_us() - t0) < spin);
		/* never below 0: epoll_wait(-1) would block with timers due */
		wait_ms = waited / 1000 < wait_ms ? wait_ms - waited / 1000 : 0;
		poll_nempty++;
		if (++poll_misses >= POLL_MISSES) {
			polling = 0;
			if (!poll_caught) {
				poll_backoff = poll_backoff == 0 ? 1 :
				    poll_backoff * 2;
				if (poll_backoff > POLL_BACKOFF_MAX)
					poll_backoff = POLL_BACKOFF_MAX;
			}
			poll_skip = poll_backoff;
		}
		return epoll_wait(epfd, evs, nevs, (int)wait_ms);
	}
	n = epoll_wait(epfd, evs, nevs, (int)wait_ms);
	waited = now_us() - t0;
	if (n > 0 && waited <= 2 * poll_max_us) {
		if (poll_skip > 0)
			poll_skip--;
		else {
			polling = 1;
			poll_caught = poll_misses = 0;
		}
	}
	return n;
}

int64_t
evloop_wall_s(void)
{
	return (int64_t)time(NULL);
}

int
evloop_setup(void)
{
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		log_warn("epoll_create1");
		return -1;
	}
	if ((watches = calloc(EVLOOP_MAXFD, sizeof(*watches))) == NULL) {
		log_warn("calloc");
		return -1;
	}
	return 0;
}

void
evloop_teardown(void)
{
	if (sigfd != -1)
		close(sigfd);
	if (epfd != -1)
		close(epfd);
	free(watches);
	watches = NULL;
	epfd = sigfd = -1;
	timers = NULL;
	nhooks = 0;
	stopping = 0;
}

int
evloop_watch(int fd, unsigned events, evloop_fd_cb *cb, void *arg)
{
	struct epoll_event	ev;
	int			op;

	if (fd < 0 || fd >= EVLOOP_MAXFD) {
		log_warnx("evloop: fd %d out of range", fd);
		return -1;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = ((events & EVLOOP_IN) ? EPOLLIN : 0) |
	    ((events & EVLOOP_OUT) ? EPOLLOUT : 0) |
	    ((events & EVLOOP_HUP) ? EPOLLRDHUP : 0) |
	    ((events & EVLOOP_EDGE) ? EPOLLET : 0);
	ev.data.fd = fd;
	op = watches[fd].active ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(epfd, op, fd, &ev) == -1) {
		log_warn("epoll_ctl fd %d", fd);
		return -1;
	}
	watches[fd].cb = cb;
	watches[fd].arg = arg;
	watches[fd].events = events;
	watches[fd].active = 1;
	return 0;
}

void
evloop_unwatch(int fd)
{
	if (fd < 0 || fd >= EVLOOP_MAXFD || !watches[fd].active)
		return;
	/* the fd may already be closed; ignore errors */
	(void)epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&watches[fd], 0, sizeof(watches[fd]));
}

/*
 * The caller closes fd right after this and no duplicate of it exists
 * (client sockets are never duplicated, and supagate never forks):
 * closing removes it from the epoll set, so only the watch is dropped,
 * without an epoll_ctl() call.
 */
void
evloop_forget(int fd)
{
	if (fd < 0 || fd >= EVLOOP_MAXFD)
		return;
	memset(&watches[fd], 0, sizeof(watches[fd]));
}

void
evloop_timer_disarm(struct evloop_timer *t)
{
	struct evloop_timer **pp;

	for (pp = &timers; *pp != NULL; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	t->next = NULL;
	t->due_ms = -1;
}

void
evloop_timer_arm(struct evloop_timer *t, int64_t ms, evloop_timer_cb *cb,
    void *arg)
{
	evloop_timer_disarm(t);
	t->due_ms = evloop_now_ms() + (ms < 0 ? 0 : ms);
	t->cb = cb;
	t->arg = arg;
	t->next = timers;
	timers = t;
}

int
evloop_hook(evloop_hook_cb *cb, void *arg)
{
	if (nhooks == EVLOOP_HOOKS)
		return -1;
	hooks[nhooks].cb = cb;
	hooks[nhooks].arg = arg;
	nhooks++;
	return 0;
}

static void
signal_read_cb(int fd, unsigned events, void *arg)
{
	struct signalfd_siginfo	si;

	(void)events;
	(void)arg;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (sig_cb != NULL)
			sig_cb((int)si.ssi_signo, sig_arg);
}

int
evloop_signals(evloop_signal_cb *cb, void *arg)
{
	sigset_t	set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1) {
		log_warn("sigprocmask");
		return -1;
	}
	if ((sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1) {
		log_warn("signalfd");
		return -1;
	}
	sig_cb = cb;
	sig_arg = arg;
	return evloop_watch(sigfd, EVLOOP_IN, signal_read_cb, NULL);
}

void
evloop_stop(void)
{
	stopping = 1;
}

static void
run_timers(void)
{
	struct evloop_timer	*t;
	int64_t			 now = evloop_now_ms();
	int			 fired;

	/* a callback may arm or disarm timers: rescan after each one */
	do {
		fired = 0;
		for (t = timers; t != NULL; t = t->next)
			if (t->due_ms <= now) {
				evloop_timer_disarm(t);
				t->cb(t->arg);
				fired = 1;
				break;
			}
	} while (fired);
}

int
evloop_run(void)
{
	struct epoll_event	 evs[64];
	struct evloop_timer	*t;
	int64_t			 wait, w, now;
	int			 i, n;

	while (!stopping) {
		run_timers();
		wait = 1000;
		for (i = 0; i < nhooks; i++) {
			w = hooks[i].cb(hooks[i].arg);
			if (w >= 0 && w < wait)
				wait = w;
		}
		now = evloop_now_ms();
		for (t = timers; t != NULL; t = t->next)
			if (t->due_ms - now < wait)
				wait = t->due_ms > now ? t->due_ms - now : 0;
		if (stopping)
			break;
		log_flush();
		n = wait_events(evs, 64, wait);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			log_warn("epoll_wait");
			return -1;
		}
		for (i = 0; i < n; i++) {
			int		 fd = evs[i].data.fd;
			unsigned	 e = 0;

			if (!watches[fd].active)
				continue;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				e |= EVLOOP_IN;
			if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
				e |= EVLOOP_OUT;
			if (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				e |= EVLOOP_HUP;
			e &= watches[fd].events;
			if (e == 0)
				continue;
			watches[fd].cb(fd, e, watches[fd].arg);
		}
	}
	stopping = 0;		/* a later evloop_run runs again */
	return 0;
}
