/*
 * check_evloop: the event loop's timers, descriptor watches and the
 * adaptive poll before sleeping (busy-poll).  Nothing here asserts a
 * duration: polling is checked only for what it must do when events come
 * back to back (start, at the limit), when waits are long (stop), when
 * events come back to back again (start again) and when it is off.
 */
#include "config.h"

#include <sys/eventfd.h>

#include <check.h>
#include <stdint.h>
#include <unistd.h>

#include "evloop.h"
#include "ck_run.h"

static struct evloop_timer	tm[3], stop_tm;
static int			order[3], norder;

static void
order_cb(void *arg)
{
	order[norder++] = (int)(intptr_t)arg;
}

static void
stop_cb(void *arg)
{
	(void)arg;
	evloop_stop();
}

START_TEST(timers_fire_in_due_order)
{
	ck_assert_int_eq(evloop_setup(), 0);
	norder = 0;
	evloop_timer_arm(&tm[0], 6, order_cb, (void *)(intptr_t)0);
	evloop_timer_arm(&tm[1], 1, order_cb, (void *)(intptr_t)1);
	evloop_timer_arm(&tm[2], 3, order_cb, (void *)(intptr_t)2);
	evloop_timer_arm(&stop_tm, 10, stop_cb, NULL);
	evloop_timer_disarm(&tm[2]);
	ck_assert_int_eq(evloop_run(), 0);
	ck_assert_int_eq(norder, 2);
	ck_assert_int_eq(order[0], 1);
	ck_assert_int_eq(order[1], 0);
	evloop_teardown();
}
END_TEST

/* an eventfd that stays readable: every loop turn has an event at once */
static int	 nready, ready_limit;
static int64_t	 max_window;

static void
ready_cb(int fd, unsigned events, void *arg)
{
	int64_t	w = evloop_busy_poll_window();

	(void)fd;
	(void)arg;
	ck_assert(events & EVLOOP_IN);
	if (w > max_window)
		max_window = w;
	if (++nready >= ready_limit)
		evloop_stop();
}

static int
ready_fd(void)
{
	int	fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(evloop_watch(fd, EVLOOP_IN, ready_cb, NULL), 0);
	return fd;
}

START_TEST(watch_is_called_until_unwatched)
{
	int	fd;

	ck_assert_int_eq(evloop_setup(), 0);
	evloop_busy_poll(0);
	nready = 0;
	ready_limit = 5;
	fd = ready_fd();
	evloop_timer_arm(&stop_tm, 5000, stop_cb, NULL);
	ck_assert_int_eq(evloop_run(), 0);
	ck_assert_int_eq(nready, 5);
	evloop_unwatch(fd);
	evloop_timer_arm(&stop_tm, 5, stop_cb, NULL);
	ck_assert_int_eq(evloop_run(), 0);
	ck_assert_int_eq(nready, 5);
	close(fd);
	evloop_teardown();
}
END_TEST

/* a forgotten, closed fd: its number can be watched again at once */
START_TEST(forget_then_close_frees_the_number)
{
	int	fd, fd2;

	ck_assert_int_eq(evloop_setup(), 0);
	evloop_busy_poll(0);
	fd = ready_fd();
	evloop_forget(fd);
	close(fd);
	/* nothing is called for it any more */
	nready = 0;
	ready_limit = 1;
	evloop_timer_arm(&stop_tm, 5, stop_cb, NULL);
	ck_assert_int_eq(evloop_run(), 0);
	ck_assert_int_eq(nready, 0);
	/* the lowest free number is fd's again: watching it works */
	fd2 = ready_fd();
	ck_assert_int_eq(fd2, fd);
	evloop_timer_arm(&stop_tm, 5000, stop_cb, NULL);
	ck_assert_int_eq(evloop_run(), 0);
	ck_assert_int_eq(nready, 1);
	evloop_unwatch(fd2);
	close(fd2);
	evloop_teardown();
}
END_TEST

/* n events back to back from an always readable fd; max_window seen */
static void
run_ready(int n)
{
	int	fd;

	nready = 0;
	ready_limit = n;
	max_window = 0;
	fd = ready_fd();
	evloop_timer_arm(&stop_tm, 5000, stop_cb, NULL);
	ck_assert_int_eq(evloop_run(), 0);
	ck_assert_int_eq(nready, n);
	evloop_timer_disarm(&stop_tm);
	evloop_unwatch(fd);
	close(fd);
}

START_TEST(busy_poll_off_stays_off)
{
	ck_assert_int_eq(evloop_setup(), 0);
	evloop_busy_poll(0);
	run_ready(200);
	ck_assert_int_eq(max_window, 0);
	evloop_teardown();
}
END_TEST

/*
 * Events back to back: a blocking wait ends at once, so polling starts,
 * at the limit.  Then only a timer every 5 ms, far longer than the
 * 1000 us limit: the polls catch nothing and polling stops.  Events back
 * to back again: it starts again at once (it had caught events before
 * it stopped, so there is no back-off).
 */
static int	ntick;

static void
tick_cb(void *arg)
{
	(void)arg;
	if (++ntick >= 16)
		evloop_stop();
	else
		evloop_timer_arm(&tm[0], 5, tick_cb, NULL);
}

START_TEST(busy_poll_starts_stops_starts)
{
	int	round;

	ck_assert_int_eq(evloop_setup(), 0);
	evloop_busy_poll(1000);
	ck_assert_int_eq(evloop_busy_poll_window(), 0);
	for (round = 0; round < 2; round++) {
		run_ready(200);
		ck_assert_int_eq(max_window, 1000);

		/* no more events: only long waits */
		ntick = 0;
		evloop_timer_arm(&tm[0], 5, tick_cb, NULL);
		ck_assert_int_eq(evloop_run(), 0);
		ck_assert_int_eq(ntick, 16);
		ck_assert_int_eq(evloop_busy_poll_window(), 0);
	}
	evloop_teardown();
}
END_TEST

START_TEST(busy_poll_limit_is_kept)
{
	ck_assert_int_eq(evloop_setup(), 0);
	evloop_busy_poll(4);
	run_ready(200);
	ck_assert_int_eq(max_window, 4);
	evloop_busy_poll(-3);		/* negative: off */
	run_ready(200);
	ck_assert_int_eq(max_window, 0);
	evloop_teardown();
}
END_TEST

static Suite *
evloop_suite(void)
{
	Suite	*s = suite_create("evloop");
	TCase	*tc = tcase_create("evloop");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, timers_fire_in_due_order);
	tcase_add_test(tc, watch_is_called_until_unwatched);
	tcase_add_test(tc, forget_then_close_frees_the_number);
	tcase_add_test(tc, busy_poll_off_stays_off);
	tcase_add_test(tc, busy_poll_starts_stops_starts);
	tcase_add_test(tc, busy_poll_limit_is_kept);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return ck_run(evloop_suite());
}
