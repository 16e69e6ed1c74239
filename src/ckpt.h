/* ckpt: WAL checkpoints of the store on a thread of their own */
#ifndef SUPAGATE_CKPT_H
#define SUPAGATE_CKPT_H

#include <stdint.h>

struct ckpt;

/*
 * Open a second connection to the WAL database at path and start the
 * thread that checkpoints it once the WAL holds frames frames.  NULL
 * when that cannot be done (the caller checkpoints on its own then).
 * The thread never logs: ckpt_error() says what went wrong.
 */
struct ckpt	*ckpt_start(const char *path, int frames);
/* stop the thread (after the pass it may be in) and close */
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
/* checkpoint passes run, and the SQLite code of the last failed one */
uint64_t	 ckpt_passes(struct ckpt *);
int		 ckpt_error(struct ckpt *);

#endif
