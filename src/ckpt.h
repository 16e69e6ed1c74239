/* ckpt: WAL checkpoints of the store on a thread of their own */
#ifndef SUPAGATE_CKPT_H
#define SUPAGATE_CKPT_H

#include <stdint.h>

struct ckpt;

/*
 * Start the thread that checkpoints a WAL with pass_fn(arg) once it
 * holds frames frames.  pass_fn runs on the thread only (with what it
 * needs of its own, such as a database connection) and returns 0 or an
 * error code, never logging: ckpt_error() gives the last one.  NULL when
 * the thread cannot be had (the caller checkpoints on its own then).
 */
struct ckpt	*ckpt_start(int frames, int (*pass_fn)(void *), void *arg);
/* stop the thread, after the pass it may be in */
void		 ckpt_stop(struct ckpt *);
/*
 * After a commit that left frames frames in the WAL: wakes the thread
 * at the threshold, unless it runs already.
 */
void		 ckpt_wal(struct ckpt *, int frames);
/*
 * 1 while a checkpoint finishes: it copies what was committed while its
 * bulk ran, and if nothing is committed until it is done, the next
 * write starts the WAL over from its beginning.  Otherwise the WAL only
 * grows under a steady stream of writes.
 */
int		 ckpt_holding(struct ckpt *);
/* block until the checkpoint asked for or in progress has finished */
void		 ckpt_wait(struct ckpt *);
/* checkpoint passes run, and the error code of the last failed one */
uint64_t	 ckpt_passes(struct ckpt *);
int		 ckpt_error(struct ckpt *);

#endif
