/* ckpt: WAL checkpoints of the store on a thread of their own */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "log.h"

#define CKPT_STACK	(256 * 1024)

/*
 * A checkpoint copies WAL frames into the database and syncs both files:
 * tens of milliseconds on a busy disk, which in the event loop held up
 * every request.  Here it runs beside the loop, in two passes of the
 * caller's pass function (on a connection of its own): the bulk while
 * writes go on, then (holding writes back) what they added meanwhile.
 * SQLite starts the WAL over only when a write begins with every frame
 * copied, which a steady stream of writes never allows without the
 * second pass.
 */
struct ckpt {
	int		(*pass_fn)(void *);
	void		*arg;
	pthread_t	 thread;
	pthread_mutex_t	 mu;
	pthread_cond_t	 wake;		/* for the thread */
	pthread_cond_t	 done;		/* for ckpt_wait() */
	int		 frames;	/* the threshold */
	int		 want;		/* under mu */
	int		 busy;		/* under mu */
	int		 stop;		/* under mu */
	atomic_int	 hold;
	atomic_int	 error;
	atomic_uint_fast64_t passes;
};

static void
pass(struct ckpt *k)
{
	int	rc;

	if ((rc = k->pass_fn(k->arg)) != 0)
		atomic_store(&k->error, rc);
	atomic_fetch_add(&k->passes, 1);
}

static void *
ckpt_main(void *arg)
{
	struct ckpt	*k = arg;

	pthread_mutex_lock(&k->mu);
	for (;;) {
		while (!k->stop && !k->want)
			pthread_cond_wait(&k->wake, &k->mu);
		if (k->stop)
			break;
		k->want = 0;
		k->busy = 1;
		pthread_mutex_unlock(&k->mu);

		pass(k);
		atomic_store(&k->hold, 1);
		pass(k);

		pthread_mutex_lock(&k->mu);
		atomic_store(&k->hold, 0);
		k->busy = 0;
		pthread_cond_broadcast(&k->done);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

struct ckpt *
ckpt_start(int frames, int (*pass_fn)(void *), void *arg)
{
	struct ckpt	*k;
	pthread_attr_t	 attr;
	sigset_t	 all, old;
	int		 rc;

	if ((k = calloc(1, sizeof(*k))) == NULL) {
		log_warn("%s", __func__);
		return NULL;
	}
	k->frames = frames > 0 ? frames : 1;
	k->pass_fn = pass_fn;
	k->arg = arg;
	atomic_init(&k->hold, 0);
	atomic_init(&k->error, 0);
	atomic_init(&k->passes, 0);
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->wake, NULL);
	pthread_cond_init(&k->done, NULL);

	/* signals are the loop's (signalfd): none for this thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, CKPT_STACK);
	rc = pthread_create(&k->thread, &attr, ckpt_main, k);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_warnx("checkpoint thread: %s", strerror(rc));
		pthread_cond_destroy(&k->done);
		pthread_cond_destroy(&k->wake);
		pthread_mutex_destroy(&k->mu);
		free(k);
		return NULL;
	}
	return k;
}

void
ckpt_stop(struct ckpt *k)
{
	if (k == NULL)
		return;
	pthread_mutex_lock(&k->mu);
	k->stop = 1;
	pthread_cond_signal(&k->wake);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->thread, NULL);
	pthread_cond_destroy(&k->done);
	pthread_cond_destroy(&k->wake);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

void
ckpt_wal(struct ckpt *k, int frames)
{
	if (frames < k->frames)
		return;
	pthread_mutex_lock(&k->mu);
	if (!k->busy) {
		k->want = 1;
		pthread_cond_signal(&k->wake);
	}
	pthread_mutex_unlock(&k->mu);
}

int
ckpt_holding(struct ckpt *k)
{
	return atomic_load(&k->hold);
}

void
ckpt_wait(struct ckpt *k)
{
	pthread_mutex_lock(&k->mu);
	while (k->busy || k->want)
		pthread_cond_wait(&k->done, &k->mu);
	pthread_mutex_unlock(&k->mu);
}

uint64_t
ckpt_passes(struct ckpt *k)
{
	return atomic_load(&k->passes);
}

int
ckpt_error(struct ckpt *k)
{
	return atomic_load(&k->error);
}
