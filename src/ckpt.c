/* ckpt: WAL checkpoints of the store on a thread of their own */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "ckpt.h"
#include "log.h"

#define CKPT_STACK	(256 * 1024)

/*
 * A checkpoint copies WAL frames into the database and syncs both files:
 * tens of milliseconds on a busy disk, which in the event loop held up
 * every request.  Here it runs beside the loop, on a connection of its
 * own, in two passes: the bulk while writes go on, then (holding
 * writes back) what they added meanwhile.  SQLite starts the WAL over
 * only when a write begins with every frame copied, which a steady
 * stream of writes never allows without the second pass.
 */
struct ckpt {
	sqlite3		*db;		/* the thread's alone */
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
	int	rc, nlog = 0, nckpt = 0;

	rc = sqlite3_wal_checkpoint_v2(k->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    &nlog, &nckpt);
	/* BUSY: another checkpoint runs (the writer's on close) */
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
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

/* the thread's connection: WAL mode seen, syncs as the writer's */
static sqlite3 *
open_conn(const char *path)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*s = NULL;
	const char	*mode;
	int		 ok = 0;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_exec(db, "PRAGMA synchronous = NORMAL;"
	    "PRAGMA cache_size = 16", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL) !=
	    SQLITE_OK || sqlite3_step(s) != SQLITE_ROW)
		goto out;
	mode = (const char *)sqlite3_column_text(s, 0);
	ok = mode != NULL && strcmp(mode, "wal") == 0;
 out:
	if (!ok)
		log_warnx("%s: checkpoint connection: %s", path,
		    db != NULL ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_finalize(s);
	if (!ok) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

struct ckpt *
ckpt_start(const char *path, int frames)
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
	atomic_init(&k->hold, 0);
	atomic_init(&k->error, 0);
	atomic_init(&k->passes, 0);
	if ((k->db = open_conn(path)) == NULL) {
		free(k);
		return NULL;
	}
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
		log_warnx("%s: thread: %s", path, strerror(rc));
		sqlite3_close(k->db);
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
	if (sqlite3_close(k->db) != SQLITE_OK)
		log_warnx("%s: %s", __func__, sqlite3_errmsg(k->db));
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
