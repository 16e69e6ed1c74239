/* store: the SQLite cache database (WAL), LRU eviction, tags */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ckpt.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define STORE_SCHEMA	2		/* PRAGMA user_version we write */
#define FILE_MIN	(16 * 1024)	/* bodies this big go to files */
#define FILE_FREE_MAX	256		/* emptied files kept for reuse */
#define STORE_APP_ID	0x53475443	/* application_id, "SGTC" */
#define BUSY_TIMEOUT_MS	1000
#define WAL_LIMIT	(64 * 1024 * 1024)	/* journal_size_limit */
#define PAGE_SIZE	4096		/* for new files; see open_db() */
#define CHECKPOINT_BYTES (8 * 1024 * 1024)	/* WAL size to checkpoint at */
#define WAL_HARD	(4 * CHECKPOINT_BYTES)	/* writes wait for a restart */
#define TOUCH_MAX	512		/* LRU updates batched per flush */
#define EVICT_BATCH	32		/* oldest entries read per round */
#define QUEUE_MAX	256		/* puts queued before a forced flush */
#define QUEUE_BYTES	(2 * 1024 * 1024)	/* or this many bytes */
#define QUEUE_HASH	64		/* buckets; keys are digests */

/*
 * Entries hold the small columns, bodies the blobs: an LRU update
 * rewrites the whole row it touches, and must not copy a body to do it.
 * The trigger keeps tags and bodies in step with entries, so every
 * delete below is one statement on entries.  INSERT OR REPLACE is never
 * used on entries: its implicit delete does not fire triggers.
 *
 * Version 2: a body of FILE_MIN bytes and more is kept in a file of its
 * own, <path>.d/<file> (entries.file; 0 for a body in bodies.body):
 * written once, sent with sendfile(2) on hits, never copied through the
 * WAL and a checkpoint.  A file is written before the transaction that
 * names it commits, and removed after the one that deletes its entry
 * commits; store_open() removes files no entry names (a crash between).
 * A file held open (by an answer in progress, by the hot set of hot.c)
 * keeps its bytes: it is unlinked, never rewritten.  One that nobody
 * holds (a write lease says so) is emptied and kept for a later body,
 * up to FILE_FREE_MAX: on ext4 without a journal a new inode is dear
 * when many were freed in the last minute, which is what a full cache
 * does all the time.
 */
static const char *const schema_v1 =
	"CREATE TABLE entries ("
	"  id INTEGER PRIMARY KEY,"
	"  key BLOB NOT NULL UNIQUE,"
	"  path TEXT NOT NULL,"
	"  status INTEGER NOT NULL,"
	"  etag TEXT NOT NULL,"
	"  stored_at INTEGER NOT NULL,"
	"  ttl INTEGER NOT NULL,"
	"  swr INTEGER NOT NULL,"
	"  sie INTEGER NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  last_access INTEGER NOT NULL);"
	"CREATE INDEX entries_lru ON entries (last_access);"
	"CREATE INDEX entries_path ON entries (path);"
	"CREATE TABLE bodies ("
	"  id INTEGER PRIMARY KEY,"
	"  headers BLOB NOT NULL,"
	"  body BLOB NOT NULL);"
	"CREATE TABLE tags ("
	"  tag TEXT NOT NULL,"
	"  entry INTEGER NOT NULL,"
	"  PRIMARY KEY (tag, entry)) WITHOUT ROWID;"
	"CREATE INDEX tags_entry ON tags (entry);"
	"CREATE TRIGGER entries_delete AFTER DELETE ON entries BEGIN"
	"  DELETE FROM tags WHERE entry = old.id;"
	"  DELETE FROM bodies WHERE id = old.id;"
	" END;";

static const char *const schema_v2 =
	"ALTER TABLE entries ADD COLUMN file INTEGER NOT NULL DEFAULT 0;";

/* per connection: deleted entries report their files (store_gone_fn) */
static const char *const gone_trigger =
	"CREATE TEMP TRIGGER entries_file_gone AFTER DELETE ON main.entries"
	" WHEN old.file != 0 BEGIN SELECT supagate_file_gone(old.file); END;";

enum {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_GET,
	S_TOUCH,
	S_FIND,
	S_DEL,
	S_INSERT,
	S_INSERT_BODY,
	S_TAG,
	S_OLDEST,
	S_TAG_SUM,
	S_TAG_DEL,
	S_PFX_SUM,
	S_PFX_DEL,
	S_ALL_TAGS,
	S_ALL_DEL,
	S_TOTALS,
	S_FILES,
	S__MAX
};

static const char *const stmt_sql[S__MAX] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_GET] = "SELECT e.id, e.status, e.etag, e.stored_at, e.ttl, e.swr,"
	    " e.sie, e.last_access, b.headers, b.body, e.file, e.size"
	    " FROM entries e JOIN bodies b ON b.id = e.id WHERE e.key = ?1",
	/* max(): a pending touch may name an id since reused by a put */
	[S_TOUCH] = "UPDATE entries SET last_access = max(last_access, ?2)"
	    " WHERE id = ?1",
	[S_FIND] = "SELECT id, size FROM entries WHERE key = ?1",
	[S_DEL] = "DELETE FROM entries WHERE id = ?1",
	[S_INSERT] = "INSERT INTO entries (key, path, status, etag,"
	    " stored_at, ttl, swr, sie, size, last_access, file)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[S_INSERT_BODY] = "INSERT INTO bodies (id, headers, body)"
	    " VALUES (?1, ?2, ?3)",
	[S_TAG] = "INSERT OR IGNORE INTO tags (tag, entry) VALUES (?1, ?2)",
	[S_OLDEST] = "SELECT id, size FROM entries ORDER BY last_access"
	    " LIMIT 32",		/* EVICT_BATCH */
	[S_TAG_SUM] = "SELECT count(*), total(e.size) FROM tags t"
	    " JOIN entries e ON e.id = t.entry WHERE t.tag = ?1",
	[S_TAG_DEL] = "DELETE FROM entries WHERE id IN"
	    " (SELECT entry FROM tags WHERE tag = ?1)",
	/* the range is exactly "starts with ?1"; see prefix_bounds() */
	[S_PFX_SUM] = "SELECT count(*), total(size) FROM entries"
	    " WHERE path >= ?1 AND path < ?2",
	[S_PFX_DEL] = "DELETE FROM entries WHERE path >= ?1 AND path < ?2",
	[S_ALL_TAGS] = "DELETE FROM tags",
	[S_ALL_DEL] = "DELETE FROM entries",
	[S_TOTALS] = "SELECT count(*), total(size),"
	    " ifnull(max(last_access), 0) FROM entries",
	[S_FILES] = "SELECT file FROM entries WHERE file != 0 ORDER BY file",
};

struct touch {
	int64_t		 id;
	int64_t		 at;
};

/*
 * A put waiting for the next flush: one allocation holding the entry,
 * its tags, path, headers and body (each NUL-terminated).
 */
struct pending {
	struct pending	*prev, *next;	/* queue order */
	struct pending	*hnext;		/* hash chain */
	unsigned char	 key[CACHE_KEY_LEN];
	char		*path;
	struct store_entry e;
	char		(*tags)[CACHE_TAG_MAX];
	size_t		 ntags;
	uint64_t	 size;		/* headers + body */
	int64_t		 file;		/* its body file, written; 0: none */
};

struct store {
	sqlite3		*db;
	sqlite3_stmt	*stmt[S__MAX];
	char		*path;
	uint64_t	 max_size;	/* 0: unbounded */
	uint64_t	 bytes;		/* committed headers + bodies */
	uint64_t	 count;
	uint64_t	 evictions;
	int64_t		 clock;	/* max(last_access) */
	struct touch	 touch[TOUCH_MAX];	/* LRU updates to write */
	size_t		 ntouch;
	struct pending	*qhead, *qtail;	/* puts not yet written */
	struct pending	*qhash[QUEUE_HASH];
	size_t		 nq;
	uint64_t	 qbytes;

	/* body files: see schema_v2 */
	char		*dir;		/* for messages */
	int		 dirfd;		/* -1: bodies stay in the database */
	int64_t		 file_seq;	/* the last file number used */
	int64_t		*gone;		/* by the open transaction */
	size_t		 ngone, capgone;
	int64_t		*freef;		/* empty, held and named by none */
	size_t		 nfree, capfree;

	/* checkpoints off the loop (ckpt.c); NULL: SQLite's own, inline */
	struct ckpt	*ckpt;
	sqlite3		*ckpt_db;	/* the thread's connection */
	int		 wal_frames;	/* in the WAL after the last commit */
	int64_t		 page;		/* the database's page size */
	int		 wal_hard;	/* frames: writes wait for a restart */
	int		 ckpt_error;	/* the last one logged */
	int		 exclusive;	/* locking_mode EXCLUSIVE, no ckpt */
};

/* open_db() results */
#define OPEN_OK		0
#define OPEN_FAIL	-1
#define OPEN_CORRUPT	1	/* move the file aside and try again */

static int
is_corrupt(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT;
}

static int
db_fail(struct store *st, const char *fn)
{
	log_warnx("%s: %s: %s", fn, st->path, sqlite3_errmsg(st->db));
	return -1;
}

/* step a statement without results; 0 or -1 (logged) */
static int
run(struct store *st, int idx, const char *fn)
{
	sqlite3_stmt	*s = st->stmt[idx];
	int		 ret = 0;

	if (sqlite3_step(s) != SQLITE_DONE)
		ret = db_fail(st, fn);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

/* count, bytes and clock from the database, after open or a rollback */
static int
resync(struct store *st)
{
	sqlite3_stmt	*s = st->stmt[S_TOTALS];
	double		 total;
	int		 ret = -1;

	if (sqlite3_step(s) != SQLITE_ROW) {
		db_fail(st, __func__);
		goto out;
	}
	st->count = (uint64_t)sqlite3_column_int64(s, 0);
	total = sqlite3_column_double(s, 1);
	st->bytes = total > 0 ? (uint64_t)total : 0;
	if (sqlite3_column_int64(s, 2) > st->clock)
		st->clock = sqlite3_column_int64(s, 2);
	ret = 0;
 out:
	sqlite3_reset(s);
	return ret;
}

/* take n entries of size bytes off the totals, never below 0 */
static void
forget(struct store *st, int64_t n, int64_t size)
{
	if (n > 0)
		st->count -= (uint64_t)n < st->count ? (uint64_t)n : st->count;
	if (size > 0)
		st->bytes -= (uint64_t)size < st->bytes ? (uint64_t)size :
		    st->bytes;
}

/* append v to the array *a of *n (capacity *cap); -1 on ENOMEM */
static int
num_push(int64_t **a, size_t *n, size_t *cap, int64_t v)
{
	int64_t	*p;
	size_t	 c;

	if (*n == *cap) {
		c = *cap < 16 ? 16 : *cap * 2;
		if ((p = reallocarray(*a, c, sizeof(*p))) == NULL)
			return -1;
		*a = p;
		*cap = c;
	}
	(*a)[(*n)++] = v;
	return 0;
}

/* the name of body file n in the directory */
static const char *
file_name(int64_t n, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRId64, n);
	return buf;
}

/*
 * 1 if nobody else has the file at fd open: a write lease is granted
 * only then (fcntl(2)); it is given back at once.
 */
static int
file_unheld(int fd)
{
	if (fcntl(fd, F_SETLEASE, F_WRLCK) == -1)
		return 0;
	(void)fcntl(fd, F_SETLEASE, F_UNLCK);
	return 1;
}

/* file n is named by no entry: empty it for reuse if unheld, or unlink */
static void
file_unlink(struct store *st, int64_t n)
{
	char	name[32];
	int	fd, ok = 0;

	if (st->dirfd == -1)
		return;
	file_name(n, name, sizeof(name));
	if (st->nfree < FILE_FREE_MAX && (fd = openat(st->dirfd, name,
	    O_RDWR | O_CLOEXEC | O_NOFOLLOW)) != -1) {
		ok = file_unheld(fd) && ftruncate(fd, 0) == 0 &&
		    num_push(&st->freef, &st->nfree, &st->capfree, n) == 0;
		close(fd);
		if (ok)
			return;
	}
	if (unlinkat(st->dirfd, name, 0) == -1 && errno != ENOENT)
		log_warn("%s: unlink %s/%s", __func__, st->dir, name);
}

/* the open transaction ended: committed, the files of deleted entries go */
static void
files_settle(struct store *st, int committed)
{
	size_t	i;

	if (committed)
		for (i = 0; i < st->ngone; i++)
			file_unlink(st, st->gone[i]);
	st->ngone = 0;
}

/* SQL function supagate_file_gone(n), run by the delete trigger */
static void
store_gone_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct store	*st = sqlite3_user_data(ctx);

	(void)argc;
	/* a file not removed is removed by the next store_open() */
	if (num_push(&st->gone, &st->ngone, &st->capgone,
	    sqlite3_value_int64(argv[0])) == -1)
		log_warnx("%s: out of memory", __func__);
	sqlite3_result_null(ctx);
}

/*
 * Write body to a new file: its number, or 0 (logged) when it could not
 * be written and the body goes into the database instead.
 */
static int64_t
file_write(struct store *st, const unsigned char *body, size_t len)
{
	char	 name[32];
	int64_t	 n = 0;
	int	 fd, w;

	if (st->dirfd == -1)
		return 0;
	/* an emptied one first (nobody holds it: see file_unlink) */
	fd = -1;
	while (fd == -1 && st->nfree > 0) {
		n = st->freef[--st->nfree];
		fd = openat(st->dirfd, file_name(n, name, sizeof(name)),
		    O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd == -1) {
		n = st->file_seq + 1;
		if ((fd = openat(st->dirfd, file_name(n, name, sizeof(name)),
		    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		    0600)) == -1) {
			log_warn("%s: %s/%s", __func__, st->dir, name);
			return 0;
		}
	}
	w = util_write_all(fd, body, len);
	if (close(fd) == -1 || w == -1) {
		log_warn("%s: %s/%s", __func__, st->dir, name);
		(void)unlinkat(st->dirfd, name, 0);
		return 0;
	}
	if (n > st->file_seq)
		st->file_seq = n;
	return n;
}

/* open body file n, which must hold len bytes; -1 if it does not */
static int
file_open(const struct store *st, int64_t n, uint64_t len)
{
	char		name[32];
	struct stat	sb;
	int		fd;

	if (st->dirfd == -1)
		return -1;
	if ((fd = openat(st->dirfd, file_name(n, name, sizeof(name)),
	    O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		log_warn("%s: %s/%s", __func__, st->dir, name);
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    (uint64_t)sb.st_size != len) {
		log_warnx("%s: %s/%s: not the %" PRIu64 " bytes stored",
		    __func__, st->dir, name, len);
		close(fd);
		return -1;
	}
	return fd;
}

int
store_entry_load(struct store_entry *e, int fd)
{
	unsigned char	*p;
	size_t		 off = 0, len = e->body_len;
	ssize_t		 r;

	if (len == SIZE_MAX || (p = malloc(len + 1)) == NULL)
		return -1;
	while (off < len) {
		if ((r = pread(fd, p + off, len - off, (off_t)off)) == -1 &&
		    errno == EINTR)
			continue;
		if (r <= 0) {
			free(p);
			return -1;
		}
		off += (size_t)r;
	}
	p[len] = '\0';
	free(e->body);
	e->body = p;
	return 0;
}

static int	 bsearch_num(const int64_t *, size_t, int64_t);

/*
 * Set up the body files: the directory, the trigger reporting deleted
 * files, the last number used, and no file that no entry names.  -1 on
 * a database error; without the directory bodies stay in the database.
 */
static int
files_open(struct store *st)
{
	sqlite3_stmt	*s = st->stmt[S_FILES];
	int64_t		*live = NULL;
	size_t		 nlive = 0, caplive = 0;
	char		*end;
	DIR		*d;
	struct dirent	*de;
	long long	 n;
	int		 rc, dfd = -1, ret = -1;

	free(st->dir);
	st->dir = NULL;
	if (st->dirfd != -1)
		close(st->dirfd);
	st->dirfd = -1;
	st->nfree = 0;
	if (sqlite3_create_function_v2(st->db, "supagate_file_gone", 1,
	    SQLITE_UTF8, st, store_gone_fn, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(st->db, gone_trigger, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(st, __func__);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (num_push(&live, &nlive, &caplive,
		    sqlite3_column_int64(s, 0)) == -1) {
			log_warnx("%s: out of memory", __func__);
			goto out;
		}
	if (rc != SQLITE_DONE) {
		db_fail(st, __func__);
		goto out;
	}
	st->file_seq = nlive > 0 ? live[nlive - 1] : 0;
	if (asprintf(&st->dir, "%s.d", st->path) == -1) {
		st->dir = NULL;
		goto out;
	}
	/* a real directory of its own, not a link to somewhere else */
	if ((mkdir(st->dir, 0700) == -1 && errno != EEXIST) ||
	    (st->dirfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 ||
	    (dfd = fcntl(st->dirfd, F_DUPFD_CLOEXEC, 0)) == -1 ||
	    (d = fdopendir(dfd)) == NULL) {
		log_warn("%s: %s: bodies stay in the database", __func__,
		    st->dir);
		if (dfd != -1)
			close(dfd);
		if (st->dirfd != -1)
			close(st->dirfd);
		st->dirfd = -1;
		ret = 0;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		errno = 0;
		n = strtoll(de->d_name, &end, 10);
		if (errno != 0 || *end != '\0' || n <= 0)
			continue;	/* not ours */
		if (n > st->file_seq)
			st->file_seq = n;	/* never reuse a number */
		if (!bsearch_num(live, nlive, n))
			file_unlink(st, n);
	}
	closedir(d);
	ret = 0;
 out:
	sqlite3_reset(s);
	free(live);
	return ret;
}

/* 1 if v is in the sorted array a of n */
static int
bsearch_num(const int64_t *a, size_t n, int64_t v)
{
	size_t	lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (a[mid] == v)
			return 1;
		if (a[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int
begin(struct store *st, const char *fn)
{
	/*
	 * The WAL grew past WAL_HARD (the thread fell behind, or writes kept
	 * coming while checkpoints finished): wait for the checkpoint, so
	 * this write starts the WAL over.  The stall the thread is there to
	 * avoid, but only when it cannot keep up.
	 */
	if (st->ckpt != NULL && st->wal_frames >= st->wal_hard)
		ckpt_wait(st->ckpt);
	return run(st, S_BEGIN, fn);
}

static int
commit(struct store *st, const char *fn)
{
	if (run(st, S_COMMIT, fn) == 0) {
		files_settle(st, 1);
		return 0;
	}
	if (!sqlite3_get_autocommit(st->db))
		(void)run(st, S_ROLLBACK, fn);
	files_settle(st, 0);
	(void)resync(st);
	return -1;
}

/* undo a failed transaction (already logged) and reload the totals */
static void
rollback(struct store *st)
{
	sqlite3_stmt	*s = st->stmt[S_ROLLBACK];

	if (!sqlite3_get_autocommit(st->db)) {
		sqlite3_step(s);
		sqlite3_reset(s);
	}
	files_settle(st, 0);
	(void)resync(st);
}

/* write the batched LRU updates; inside a transaction */
static int
flush_touches(struct store *st)
{
	sqlite3_stmt	*s = st->stmt[S_TOUCH];
	size_t		 i;
	int		 ret = 0;

	for (i = 0; i < st->ntouch && ret == 0; i++) {
		if (sqlite3_bind_int64(s, 1, st->touch[i].id) ||
		    sqlite3_bind_int64(s, 2, st->touch[i].at) ||
		    sqlite3_step(s) != SQLITE_DONE)
			ret = db_fail(st, __func__);
		sqlite3_reset(s);
	}
	st->ntouch = 0;	/* on failure recency is lost, not data */
	return ret;
}

/*
 * Record an access of entry id, last used at last.  An entry among the
 * count/2 most recent accesses is left where it is (approximate LRU, as
 * Varnish's lru_interval does): a hot entry costs no write per hit, and
 * it is nowhere near the end that eviction takes from; reads spread over
 * the whole store write half as many updates (each one a page of the
 * WAL, and in time a checkpoint, that holds the loop up).  With one
 * entry the window is 0 and the order is exact.
 */
static int64_t
touch(struct store *st, int64_t id, int64_t last)
{
	size_t	 i;

	if ((uint64_t)(st->clock - last) <= st->count / 2)
		return last;
	for (i = 0; i < st->ntouch; i++)
		if (st->touch[i].id == id) {
			if ((uint64_t)(st->clock - st->touch[i].at) <=
			    st->count / 2)
				return st->touch[i].at;
			return st->touch[i].at = ++st->clock;
		}
	st->touch[st->ntouch].id = id;
	st->touch[st->ntouch].at = ++st->clock;
	last = st->clock;
	if (++st->ntouch == TOUCH_MAX)
		(void)store_flush(st);
	return last;
}

void
store_touch(struct store *st, struct store_entry *e)
{
	if (st != NULL && e->id > 0)
		e->last_access = touch(st, e->id, e->last_access);
}

static int64_t
clamp64(uint64_t v)
{
	return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* the queued put of key, or NULL */
static struct pending *
queue_find(const struct store *st, const unsigned char key[CACHE_KEY_LEN])
{
	struct pending	*q;

	for (q = st->qhash[key[0] % QUEUE_HASH]; q != NULL; q = q->hnext)
		if (memcmp(q->key, key, CACHE_KEY_LEN) == 0)
			return q;
	return NULL;
}

/* take q off the queue and free it */
static void
queue_drop(struct store *st, struct pending *q, int written)
{
	struct pending	**pp;

	/* written: its file is the database's now, named or deleted there */
	if (!written && q->file != 0)
		file_unlink(st, q->file);
	for (pp = &st->qhash[q->key[0] % QUEUE_HASH]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == q) {
			*pp = q->hnext;
			break;
		}
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		st->qhead = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	else
		st->qtail = q->prev;
	st->nq--;
	st->qbytes -= q->size;
	free(q);
}

static void
queue_clear(struct store *st, int written)
{
	while (st->qhead != NULL)
		queue_drop(st, st->qhead, written);
}

/* a copy of the put, queued behind the others; -1 on ENOMEM */
static int
queue_add(struct store *st, const unsigned char key[CACHE_KEY_LEN],
    const char *path, const struct store_entry *e, uint64_t size,
    char tags[][CACHE_TAG_MAX], size_t ntags)
{
	struct pending	*q;
	size_t		 plen = strlen(path), i, n, blen;
	int64_t		 file = 0;
	char		*p;

	/* written now, one at a time, not all at the flush; not copied */
	if (e->body_len >= FILE_MIN)
		file = file_write(st, e->body, e->body_len);
	blen = file != 0 ? 0 : e->body_len;
	n = sizeof(*q) + ntags * CACHE_TAG_MAX + plen + 1 +
	    e->headers_len + 1 + blen + 1;
	if ((q = malloc(n)) == NULL) {
		log_warn("%s", __func__);
		if (file != 0)
			file_unlink(st, file);
		return -1;
	}
	memset(q, 0, sizeof(*q));
	memcpy(q->key, key, CACHE_KEY_LEN);
	q->e = *e;
	/* as the database gives them back */
	q->e.ttl_s = (uint64_t)clamp64(e->ttl_s);
	q->e.swr_s = (uint64_t)clamp64(e->swr_s);
	q->e.sie_s = (uint64_t)clamp64(e->sie_s);
	q->e.id = 0;		/* not a row yet */
	q->e.last_access = 0;
	q->size = size;
	p = (char *)(q + 1);
	q->tags = (char (*)[CACHE_TAG_MAX])p;
	q->ntags = ntags;
	for (i = 0; i < ntags; i++)
		memcpy(q->tags[i], tags[i], CACHE_TAG_MAX);
	p += ntags * CACHE_TAG_MAX;
	q->path = p;
	memcpy(p, path, plen + 1);
	p += plen + 1;
	q->e.headers = p;
	if (e->headers_len > 0)
		memcpy(p, e->headers, e->headers_len);
	p[e->headers_len] = '\0';
	p += e->headers_len + 1;
	/* a body in its file is not kept here: body NULL, body_len set */
	q->file = file;
	q->e.body = file != 0 ? NULL : (unsigned char *)p;
	if (blen > 0)
		memcpy(p, e->body, blen);
	p[blen] = '\0';

	q->hnext = st->qhash[key[0] % QUEUE_HASH];
	st->qhash[key[0] % QUEUE_HASH] = q;
	q->prev = st->qtail;
	if (st->qtail != NULL)
		st->qtail->next = q;
	else
		st->qhead = q;
	st->qtail = q;
	st->nq++;
	st->qbytes += size;
	return 0;
}

/*
 * Delete least recently used entries until the total fits; inside a
 * transaction.  The entry just put has the newest access and fits by
 * itself, so it is never reached.
 */
static int
evict(struct store *st, uint64_t *evicted)
{
	sqlite3_stmt	*s = st->stmt[S_OLDEST], *d = st->stmt[S_DEL];
	int64_t		 id[EVICT_BATCH], size[EVICT_BATCH];
	size_t		 i, n;
	int		 rc = SQLITE_DONE;

	while (st->max_size > 0 && st->bytes > st->max_size) {
		n = 0;
		while (n < EVICT_BATCH &&
		    (rc = sqlite3_step(s)) == SQLITE_ROW) {
			id[n] = sqlite3_column_int64(s, 0);
			size[n] = sqlite3_column_int64(s, 1);
			n++;
		}
		if (n < EVICT_BATCH && rc != SQLITE_DONE) {
			db_fail(st, __func__);
			sqlite3_reset(s);
			return -1;
		}
		sqlite3_reset(s);
		if (n == 0) {
			/* the totals were wrong: trust the database */
			st->bytes = 0;
			st->count = 0;
			break;
		}
		for (i = 0; i < n && st->bytes > st->max_size; i++) {
			if (sqlite3_bind_int64(d, 1, id[i]) ||
			    sqlite3_step(d) != SQLITE_DONE) {
				db_fail(st, __func__);
				sqlite3_reset(d);
				return -1;
			}
			sqlite3_reset(d);
			forget(st, 1, size[i]);
			(*evicted)++;
		}
	}
	return 0;
}

static int
prepare_all(struct store *st)
{
	int	 i;

	for (i = 0; i < S__MAX; i++)
		if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL) !=
		    SQLITE_OK)
			return db_fail(st, __func__);
	return 0;
}

static void
close_db(struct store *st)
{
	int	 i;

	for (i = 0; i < S__MAX; i++) {
		sqlite3_finalize(st->stmt[i]);
		st->stmt[i] = NULL;
	}
	if (sqlite3_close(st->db) != SQLITE_OK)
		log_warnx("%s: %s: %s", __func__, st->path,
		    sqlite3_errmsg(st->db));
	st->db = NULL;
}

/* one row, one integer column; -1 (logged) on error, *corrupt set */
static int
pragma_int(struct store *st, const char *sql, int64_t *v, int *corrupt)
{
	sqlite3_stmt	*s = NULL;
	int		 rc, ret = -1;

	rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		*corrupt = is_corrupt(rc) ||
		    is_corrupt(sqlite3_errcode(st->db));
		db_fail(st, sql);
		goto out;
	}
	*v = sqlite3_column_int64(s, 0);
	ret = 0;
 out:
	sqlite3_finalize(s);
	return ret;
}

/* quick_check (or integrity_check) says "ok": 1; 0 if not; -1 error */
static int
check_ok(struct store *st, const char *sql, int *corrupt)
{
	sqlite3_stmt	*s = NULL;
	const char	*r;
	int		 rc, ret = -1;

	rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		*corrupt = is_corrupt(rc) ||
		    is_corrupt(sqlite3_errcode(st->db));
		db_fail(st, sql);
		goto out;
	}
	r = (const char *)sqlite3_column_text(s, 0);
	ret = r != NULL && strcmp(r, "ok") == 0 &&
	    sqlite3_step(s) == SQLITE_DONE;
	if (!ret)
		log_warnx("%s: %s: %s", st->path, sql, r ? r : "(null)");
 out:
	sqlite3_finalize(s);
	return ret;
}

/*
 * Bring the schema to STORE_SCHEMA; migrations from older versions go in
 * the switch, each falling through to the next.  Runs in one write
 * transaction, so two daemons opening one new file do not both create.
 */
static int
migrate(struct store *st)
{
	char		 sql[96];
	int64_t		 app, ver, tables;
	int		 corrupt = 0, ret = OPEN_FAIL;

	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		db_fail(st, __func__);
		return is_corrupt(sqlite3_errcode(st->db)) ? OPEN_CORRUPT :
		    OPEN_FAIL;
	}
	if (pragma_int(st, "PRAGMA application_id", &app, &corrupt) == -1 ||
	    pragma_int(st, "PRAGMA user_version", &ver, &corrupt) == -1 ||
	    pragma_int(st, "SELECT count(*) FROM sqlite_master", &tables,
	    &corrupt) == -1) {
		ret = corrupt ? OPEN_CORRUPT : OPEN_FAIL;
		goto out;
	}
	if ((app != STORE_APP_ID && app != 0) ||
	    (app == 0 && tables > 0)) {
		/* somebody's database: not ours to move or to write */
		log_warnx("%s: not a supagate cache database", st->path);
		goto out;
	}
	if (ver > STORE_SCHEMA) {
		log_warnx("%s: cache schema %" PRId64 " is newer than %d",
		    st->path, ver, STORE_SCHEMA);
		ret = OPEN_CORRUPT;
		goto out;
	}
	switch (ver) {
	case 0:
		if (sqlite3_exec(st->db, schema_v1, NULL, NULL, NULL) !=
		    SQLITE_OK) {
			db_fail(st, __func__);
			goto out;
		}
		/* FALLTHROUGH */
	case 1:
		if (sqlite3_exec(st->db, schema_v2, NULL, NULL, NULL) !=
		    SQLITE_OK) {
			db_fail(st, __func__);
			goto out;
		}
		/* FALLTHROUGH */
	case STORE_SCHEMA:
		break;
	}
	if (ver != STORE_SCHEMA) {
		snprintf(sql, sizeof(sql), "PRAGMA application_id = %d;"
		    "PRAGMA user_version = %d", STORE_APP_ID, STORE_SCHEMA);
		if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
			db_fail(st, __func__);
			goto out;
		}
	}
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_fail(st, __func__);
		goto out;
	}
	return OPEN_OK;
 out:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

/* create path 0600 (or tighten it) before SQLite opens it */
static int
create_file(const char *path)
{
	struct stat	 sb;
	int		 fd;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		log_warn("%s", path);
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		log_warnx("%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if ((sb.st_mode & 077) != 0 && fchmod(fd, 0600) == -1) {
		log_warn("%s: chmod", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
open_db(struct store *st)
{
	const char	*mode;
	sqlite3_stmt	*s = NULL;
	char		 sql[128];
	int64_t		 page = 0;
	int		 rc, corrupt = 0, ret;

	if (create_file(st->path) == -1)
		return OPEN_FAIL;
	/* WAL and shm files take the mode of the database file */
	rc = sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		if (st->db == NULL) {
			log_warnx("%s: %s", st->path, sqlite3_errstr(rc));
			return OPEN_FAIL;
		}
		db_fail(st, __func__);
		return is_corrupt(rc) ? OPEN_CORRUPT : OPEN_FAIL;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);

	/*
	 * Normal locking (not EXCLUSIVE, which saved two fcntl() calls per
	 * statement): the checkpoint thread needs a connection of its own,
	 * and both share the WAL index in path-shm.  One daemon per store
	 * is the state-dir lock's business (session.c).  Where that file
	 * cannot be had (no shared mmap), EXCLUSIVE keeps the index in heap
	 * memory, and checkpoints run in the loop.
	 */
	if (st->exclusive && sqlite3_exec(st->db,
	    "PRAGMA locking_mode = EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK) {
		db_fail(st, "locking_mode");
		return OPEN_FAIL;
	}
	/*
	 * 4 KiB pages for a new file (an existing one keeps its own):
	 * bodies that would take many pages are files of their own, and
	 * what is left is small rows and indexes keyed by digests, where
	 * every insert and eviction dirties a page at random; each such page
	 * goes to the WAL whole (16 KiB pages, used before body files,
	 * made a 64 KiB put that evicted 47 small entries cost 2.2 ms,
	 * 4 KiB pages 1.3 ms).  Only possible before WAL mode writes the
	 * header.
	 */
	snprintf(sql, sizeof(sql), "PRAGMA page_size = %d", PAGE_SIZE);
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		log_warnx("%s: %s", st->path, sqlite3_errmsg(st->db));
	/* the first read of the file: garbage shows up here */
	rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s,
	    NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		corrupt = is_corrupt(rc) || is_corrupt(sqlite3_errcode(st->db));
		db_fail(st, "journal_mode");
		sqlite3_finalize(s);
		return corrupt ? OPEN_CORRUPT : OPEN_FAIL;
	}
	mode = (const char *)sqlite3_column_text(s, 0);
	if (mode == NULL || strcmp(mode, "wal") != 0)
		log_warnx("%s: journal mode %s, not wal", st->path,
		    mode ? mode : "(null)");
	sqlite3_finalize(s);

	switch (check_ok(st, "PRAGMA quick_check", &corrupt)) {
	case 1:
		break;
	case 0:
		return OPEN_CORRUPT;
	default:
		return corrupt ? OPEN_CORRUPT : OPEN_FAIL;
	}
	/*
	 * A cache entry may be lost on power failure, never half-written.
	 * Checkpoint at about CHECKPOINT_BYTES of WAL whatever the page
	 * size (the default, 1000 pages, is 16 MB with 16 KiB pages: a
	 * long stall of the loop each time).
	 */
	if (pragma_int(st, "PRAGMA page_size", &page, &corrupt) == -1)
		return corrupt ? OPEN_CORRUPT : OPEN_FAIL;
	snprintf(sql, sizeof(sql), "PRAGMA synchronous = NORMAL;"
	    "PRAGMA journal_size_limit = %d;PRAGMA wal_autocheckpoint = %d",
	    WAL_LIMIT, (int)(CHECKPOINT_BYTES / (page > 0 ? page : 4096)));
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		db_fail(st, __func__);
		return OPEN_FAIL;
	}
	if ((ret = migrate(st)) != OPEN_OK)
		return ret;
	if (prepare_all(st) == -1)
		/* ours by its id and version, yet not the schema we wrote */
		return OPEN_CORRUPT;
	if (resync(st) == -1 || files_open(st) == -1)
		return OPEN_FAIL;
	return OPEN_OK;
}

/* rename path (and its WAL) to path.corrupt-<time>; drop the shm */
static int
move_aside(const char *path)
{
	char	 to[4096], from[4096];
	int	 n;

	n = snprintf(to, sizeof(to), "%s.corrupt-%lld", path,
	    (long long)time(NULL));
	if (n < 0 || (size_t)n + 4 >= sizeof(to)) {
		log_warnx("%s: path too long", path);
		return -1;
	}
	if (rename(path, to) == -1) {
		log_warn("%s: rename to %s", path, to);
		return -1;
	}
	log_warnx("%s: corrupt cache database moved to %s, starting empty",
	    path, to);
	snprintf(from, sizeof(from), "%s-wal", path);
	snprintf(to + n, sizeof(to) - (size_t)n, "-wal");
	if (rename(from, to) == -1 && errno != ENOENT)
		log_warn("%s: rename", from);
	snprintf(from, sizeof(from), "%s-shm", path);
	if (unlink(from) == -1 && errno != ENOENT)
		log_warn("%s: unlink", from);
	return 0;
}

/* after each commit: the WAL holds frames frames */
static int
wal_hook_fn(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct store	*st = arg;
	int		 err;

	(void)db;
	(void)name;
	st->wal_frames = frames;
	if ((err = ckpt_error(st->ckpt)) != 0 && err != st->ckpt_error) {
		st->ckpt_error = err;
		log_warnx("%s: checkpoint: %s", st->path, sqlite3_errstr(err));
	}
	ckpt_wal(st->ckpt, frames);
	return SQLITE_OK;
}

/* a pass of the checkpoint thread, on its own connection */
static int
ckpt_pass(void *arg)
{
	struct store	*st = arg;
	int		 rc, nlog = 0, nckpt = 0;

	rc = sqlite3_wal_checkpoint_v2(st->ckpt_db, NULL,
	    SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
	/* BUSY: another checkpoint runs (the writer's on close) */
	return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : rc;
}

/* the checkpoint thread's connection: WAL mode seen, syncs as ours */
static sqlite3 *
ckpt_conn(const char *path)
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

/*
 * Checkpoints on a thread (ckpt.c) instead of in the commit that crosses
 * CHECKPOINT_BYTES: the hook replaces wal_autocheckpoint, which stays
 * as it is if the thread cannot be had.
 */
static void
ckpt_setup(struct store *st)
{
	int64_t	page = 0;
	int	corrupt = 0;

	if (pragma_int(st, "PRAGMA page_size", &page, &corrupt) == -1 ||
	    page <= 0)
		return;
	st->page = page;
	st->wal_hard = (int)(WAL_HARD / page);
	if ((st->ckpt_db = ckpt_conn(st->path)) == NULL ||
	    (st->ckpt = ckpt_start((int)(CHECKPOINT_BYTES / page), ckpt_pass,
	    st)) == NULL) {
		sqlite3_close(st->ckpt_db);
		st->ckpt_db = NULL;
		log_warnx("%s: checkpoints run in the event loop", st->path);
		return;
	}
	sqlite3_wal_hook(st->db, wal_hook_fn, st);
}

/* close the database and release st */
static void
store_free(struct store *st)
{
	/* first: the writer's close checkpoints and removes the WAL */
	ckpt_stop(st->ckpt);
	st->ckpt = NULL;
	if (st->ckpt_db != NULL && sqlite3_close(st->ckpt_db) != SQLITE_OK)
		log_warnx("%s: %s", st->path, sqlite3_errmsg(st->ckpt_db));
	st->ckpt_db = NULL;
	close_db(st);
	if (st->dirfd != -1)
		close(st->dirfd);
	free(st->dir);
	free(st->gone);
	free(st->freef);
	free(st->path);
	free(st);
}

struct store *
store_open(const char *path, uint64_t max_size)
{
	struct store	*st;
	uint64_t	 evicted = 0;
	int		 r;

	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->path = strdup(path)) == NULL) {
		log_warn("%s", __func__);
		free(st);
		return NULL;
	}
	st->dirfd = -1;
	st->max_size = max_size;
	if ((r = open_db(st)) == OPEN_FAIL) {
		close_db(st);
		st->exclusive = 1;
		if ((r = open_db(st)) == OPEN_OK)
			log_warnx("%s: no shared WAL index (%s-shm): one "
			    "connection, checkpoints in the event loop", path,
			    path);
	}
	if (r == OPEN_CORRUPT) {
		close_db(st);
		if (move_aside(path) == -1)
			goto fail;
		r = open_db(st);
	}
	if (r != OPEN_OK)
		goto fail;
	if (!st->exclusive)
		ckpt_setup(st);
	/* max_size may have shrunk since the last run */
	if (max_size > 0 && st->bytes > max_size) {
		if (begin(st, __func__) == -1)
			goto fail;
		if (evict(st, &evicted) == -1) {
			rollback(st);
			goto fail;
		}
		if (commit(st, __func__) == -1)
			goto fail;
		st->evictions += evicted;
	}
	return st;
 fail:
	store_free(st);
	return NULL;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	(void)store_flush(st);
	store_free(st);
}

/* copy a column's bytes, NUL-terminated; NULL when out of memory */
static void *
dup_column(sqlite3_stmt *s, int col, size_t *len)
{
	const void	*p = sqlite3_column_blob(s, col);
	size_t		 n = (size_t)sqlite3_column_bytes(s, col);
	char		*q;

	if ((q = malloc(n + 1)) == NULL)
		return NULL;
	if (n > 0)
		memcpy(q, p, n);
	q[n] = '\0';
	*len = n;
	return q;
}

static uint64_t
column_u64(sqlite3_stmt *s, int col)
{
	int64_t	 v = sqlite3_column_int64(s, col);

	return v > 0 ? (uint64_t)v : 0;
}

/*
 * e's body (e->body_len bytes) from body file n: the open file in *fd,
 * or, with fd NULL, read into e->body.  1; 0 if the file is lost (gone,
 * or shorter); -1 if reading it failed (logged).
 */
static int
file_body(const struct store *st, int64_t n, struct store_entry *e, int *fd)
{
	int	bfd, rc;

	if ((bfd = file_open(st, n, e->body_len)) == -1)
		return 0;
	if (fd != NULL) {
		*fd = bfd;
		return 1;
	}
	rc = store_entry_load(e, bfd);
	close(bfd);
	if (rc == -1) {
		log_warn("store_get: body file %" PRId64, n);
		return -1;
	}
	return 1;
}

/* a queued put as a lookup result: 1, 0 if its file is lost, or -1 */
static int
copy_pending(const struct store *st, const struct pending *q,
    struct store_entry *e, int *fd)
{
	int	rc;

	*e = q->e;
	e->body = NULL;
	if ((e->headers = malloc(q->e.headers_len + 1)) == NULL ||
	    (q->file == 0 && (e->body = malloc(q->e.body_len + 1)) == NULL)) {
		log_warnx("store_get: out of memory");
		store_entry_fini(e);
		return -1;
	}
	memcpy(e->headers, q->e.headers, q->e.headers_len + 1);
	if (q->file == 0) {
		memcpy(e->body, q->e.body, q->e.body_len + 1);
		return 1;
	}
	/* as for a stored entry: its file, or the body read from it */
	if ((rc = file_body(st, q->file, e, fd)) != 1)
		store_entry_fini(e);
	return rc;
}

/* drop the entry id whose body file is lost: it cannot be answered */
static void
drop_broken(struct store *st, int64_t id, int64_t size)
{
	sqlite3_stmt	*d = st->stmt[S_DEL];

	if (begin(st, __func__) == -1)
		return;
	if (sqlite3_bind_int64(d, 1, id) || sqlite3_step(d) != SQLITE_DONE) {
		db_fail(st, __func__);
		sqlite3_reset(d);
		rollback(st);
		return;
	}
	sqlite3_reset(d);
	if (commit(st, __func__) == 0)
		forget(st, 1, size);
}

/* store_get(), store_get_fd(): fd NULL reads a body file into memory */
static int
get(struct store *st, const unsigned char key[CACHE_KEY_LEN],
    struct store_entry *e, int *fd)
{
	sqlite3_stmt	*s = st->stmt[S_GET];
	struct pending	*q;
	const char	*etag;
	int64_t		 id = 0, last = 0, file, size = 0;
	uint64_t	 blen;
	int		 rc, ret = -1;

	memset(e, 0, sizeof(*e));
	if (fd != NULL)
		*fd = -1;
	if ((q = queue_find(st, key)) != NULL)
		return copy_pending(st, q, e, fd);
	if (sqlite3_bind_blob(s, 1, key, CACHE_KEY_LEN, SQLITE_STATIC) !=
	    SQLITE_OK) {
		db_fail(st, __func__);
		goto out;
	}
	if ((rc = sqlite3_step(s)) == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		db_fail(st, __func__);
		goto out;
	}
	id = sqlite3_column_int64(s, 0);
	e->status = sqlite3_column_int(s, 1);
	if ((etag = (const char *)sqlite3_column_text(s, 2)) != NULL)
		snprintf(e->etag, sizeof(e->etag), "%s", etag);
	e->stored_at = sqlite3_column_int64(s, 3);
	e->ttl_s = column_u64(s, 4);
	e->swr_s = column_u64(s, 5);
	e->sie_s = column_u64(s, 6);
	last = sqlite3_column_int64(s, 7);
	file = sqlite3_column_int64(s, 10);
	size = sqlite3_column_int64(s, 11);
	if ((e->headers = dup_column(s, 8, &e->headers_len)) == NULL ||
	    (file == 0 && (e->body = dup_column(s, 9, &e->body_len)) ==
	    NULL)) {
		log_warnx("%s: out of memory", __func__);
		store_entry_fini(e);
		goto out;
	}
	if (file != 0) {
		blen = size > 0 && (uint64_t)size >= e->headers_len ?
		    (uint64_t)size - e->headers_len : 0;
		e->body_len = (size_t)blen;
		if ((rc = file_body(st, file, e, fd)) != 1) {
			store_entry_fini(e);
			/* lost (removed by hand, cut by a power loss): a miss */
			if (rc == 0)
				ret = -2;
			goto out;
		}
	}
	ret = 1;
 out:
	sqlite3_reset(s);
	if (ret == 1) {
		e->id = id;
		e->last_access = touch(st, id, last);
	}
	if (ret == -2) {
		drop_broken(st, id, size);
		ret = 0;
	}
	return ret;
}

int
store_get(struct store *st, const unsigned char key[CACHE_KEY_LEN],
    struct store_entry *e)
{
	return get(st, key, e, NULL);
}

int
store_get_fd(struct store *st, const unsigned char key[CACHE_KEY_LEN],
    struct store_entry *e, int *fd)
{
	return get(st, key, e, fd);
}

void
store_entry_fini(struct store_entry *e)
{
	free(e->headers);
	free(e->body);
	e->headers = NULL;
	e->headers_len = 0;
	e->body = NULL;
	e->body_len = 0;
}

/* bind n bytes at p as a blob; an empty blob when n is 0 (p may be NULL) */
static int
bind_bytes(sqlite3_stmt *s, int col, const void *p, size_t n)
{
	if (n == 0)
		return sqlite3_bind_zeroblob(s, col, 0);
	return sqlite3_bind_blob64(s, col, p, n, SQLITE_STATIC);
}

/* replace key's entry and its tags; inside a transaction */
static int
put_entry(struct store *st, const unsigned char key[CACHE_KEY_LEN],
    const char *path, const struct store_entry *e, uint64_t size,
    char tags[][CACHE_TAG_MAX], size_t ntags, int64_t file)
{
	sqlite3_stmt	*s;
	int64_t		 id;
	size_t		 i;
	int		 ret = -1;

	s = st->stmt[S_INSERT];
	if (sqlite3_bind_blob(s, 1, key, CACHE_KEY_LEN, SQLITE_STATIC) ||
	    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int(s, 3, e->status) ||
	    sqlite3_bind_text(s, 4, e->etag, (int)strnlen(e->etag,
	    sizeof(e->etag)), SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 5, e->stored_at) ||
	    sqlite3_bind_int64(s, 6, clamp64(e->ttl_s)) ||
	    sqlite3_bind_int64(s, 7, clamp64(e->swr_s)) ||
	    sqlite3_bind_int64(s, 8, clamp64(e->sie_s)) ||
	    sqlite3_bind_int64(s, 9, clamp64(size)) ||
	    sqlite3_bind_int64(s, 10, st->clock + 1) ||
	    sqlite3_bind_int64(s, 11, file) ||
	    sqlite3_step(s) != SQLITE_DONE) {
		db_fail(st, __func__);
		goto out;
	}
	sqlite3_reset(s);
	id = sqlite3_last_insert_rowid(st->db);

	s = st->stmt[S_INSERT_BODY];
	if (sqlite3_bind_int64(s, 1, id) ||
	    bind_bytes(s, 2, e->headers, e->headers_len) ||
	    bind_bytes(s, 3, e->body, file != 0 ? 0 : e->body_len) ||
	    sqlite3_step(s) != SQLITE_DONE) {
		db_fail(st, __func__);
		goto out;
	}
	sqlite3_reset(s);

	s = st->stmt[S_TAG];
	for (i = 0; i < ntags; i++) {
		size_t	 len = strnlen(tags[i], CACHE_TAG_MAX);

		if (len == 0)
			continue;
		if (sqlite3_bind_text(s, 1, tags[i], (int)len,
		    SQLITE_STATIC) ||
		    sqlite3_bind_int64(s, 2, id) ||
		    sqlite3_step(s) != SQLITE_DONE) {
			db_fail(st, __func__);
			goto out;
		}
		sqlite3_reset(s);
	}
	ret = 0;
 out:
	sqlite3_reset(s);
	return ret;
}

/* delete key's entry if there is one; inside a transaction */
static int
drop_key(struct store *st, const unsigned char key[CACHE_KEY_LEN])
{
	sqlite3_stmt	*s = st->stmt[S_FIND], *d = st->stmt[S_DEL];
	int64_t		 id, size;
	int		 rc, ret = -1;

	if (sqlite3_bind_blob(s, 1, key, CACHE_KEY_LEN, SQLITE_STATIC) ||
	    ((rc = sqlite3_step(s)) != SQLITE_ROW && rc != SQLITE_DONE)) {
		db_fail(st, __func__);
		goto out;
	}
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
	id = sqlite3_column_int64(s, 0);
	size = sqlite3_column_int64(s, 1);
	if (sqlite3_bind_int64(d, 1, id) || sqlite3_step(d) != SQLITE_DONE) {
		db_fail(st, __func__);
		goto out;
	}
	forget(st, 1, size);
	ret = 0;
 out:
	sqlite3_reset(d);
	sqlite3_reset(s);
	return ret;
}

/* write the queued puts, then evict; inside a transaction */
static int
write_queue(struct store *st, uint64_t *evicted)
{
	struct pending	*q;

	for (q = st->qhead; q != NULL; q = q->next) {
		if (drop_key(st, q->key) == -1 ||
		    put_entry(st, q->key, q->path, &q->e, q->size, q->tags,
		    q->ntags, q->file) == -1)
			return -1;
		st->clock++;
		st->bytes += q->size;
		st->count++;
	}
	return evict(st, evicted);
}

int
store_flush(struct store *st)
{
	uint64_t	 evicted = 0;

	if (st->nq == 0 && st->ntouch == 0)
		return 0;
	if (begin(st, __func__) == -1)
		goto fail;
	if (flush_touches(st) == -1 || write_queue(st, &evicted) == -1) {
		rollback(st);
		goto fail;
	}
	if (commit(st, __func__) == -1)
		goto fail;
	st->evictions += evicted;
	queue_clear(st, 1);
	return 0;
 fail:
	/* a cache: what could not be written is dropped, not retried */
	st->ntouch = 0;
	queue_clear(st, 0);
	return -1;
}

int
store_flush_due(struct store *st)
{
	/* at most one pass of the checkpoint thread, and a queue's worth */
	if (st->ckpt != NULL && ckpt_holding(st->ckpt) &&
	    st->wal_frames < st->wal_hard && st->nq < QUEUE_MAX &&
	    st->qbytes < QUEUE_BYTES && st->ntouch < TOUCH_MAX)
		return 1;
	return store_flush(st);
}

int
store_put(struct store *st, const unsigned char key[CACHE_KEY_LEN],
    const char *path, const struct store_entry *e,
    char tags[][CACHE_TAG_MAX], size_t ntags)
{
	struct pending	*q;
	uint64_t	 size;
	int		 fits;

	if (path == NULL)
		path = "";
	size = (uint64_t)e->headers_len + e->body_len;
	fits = size >= e->headers_len &&
	    (st->max_size == 0 || size <= st->max_size);

	if ((q = queue_find(st, key)) != NULL)
		queue_drop(st, q, 0);
	if (!fits) {
		/* the old version is gone either way: it is out of date */
		if (begin(st, __func__) == -1)
			return -1;
		if (flush_touches(st) == -1 || drop_key(st, key) == -1) {
			rollback(st);
			return -1;
		}
		if (commit(st, __func__) == -1)
			return -1;
		log_debug("%s: %" PRIu64 " bytes exceed the cache size %"
		    PRIu64 ", not stored", __func__, size, st->max_size);
		return -1;
	}
	if (queue_add(st, key, path, e, size, tags, ntags) == -1)
		return -1;
	if (st->nq >= QUEUE_MAX || st->qbytes >= QUEUE_BYTES)
		return store_flush(st);
	return 0;
}

/*
 * Sum what sum selects with (a1, a2) bound, then delete with del bound
 * the same way, in one transaction; the number deleted or -1.
 */
static long
delete_where(struct store *st, int sum, int del, const char *a1,
    const void *a2, int a2len, const char *fn)
{
	sqlite3_stmt	*s = st->stmt[sum], *d = st->stmt[del];
	uint64_t	 evicted = 0;
	int64_t		 n = 0;
	double		 bytes = 0;
	int		 i;

	if (begin(st, fn) == -1)
		return -1;
	/* queued puts are written first, so the delete sees them */
	if (write_queue(st, &evicted) == -1)
		goto fail;
	for (i = 0; i < 2; i++) {
		sqlite3_stmt	*q = i == 0 ? s : d;

		if (sqlite3_bind_text(q, 1, a1, -1, SQLITE_STATIC) ||
		    (a2 != NULL && (a2len > 0 ?
		    sqlite3_bind_text(q, 2, a2, a2len, SQLITE_STATIC) :
		    sqlite3_bind_zeroblob(q, 2, 0)))) {
			db_fail(st, fn);
			goto fail;
		}
	}
	if (sqlite3_step(s) != SQLITE_ROW) {
		db_fail(st, fn);
		goto fail;
	}
	n = sqlite3_column_int64(s, 0);
	bytes = sqlite3_column_double(s, 1);
	sqlite3_reset(s);
	if (n > 0 && sqlite3_step(d) != SQLITE_DONE) {
		db_fail(st, fn);
		goto fail;
	}
	sqlite3_reset(d);
	if (commit(st, fn) == -1) {
		queue_clear(st, 0);
		return -1;
	}
	queue_clear(st, 1);
	st->evictions += evicted;
	forget(st, n, (int64_t)bytes);
	return (long)n;
 fail:
	sqlite3_reset(s);
	sqlite3_reset(d);
	rollback(st);
	queue_clear(st, 0);
	return -1;
}

long
store_invalidate_tag(struct store *st, const char *tag)
{
	return delete_where(st, S_TAG_SUM, S_TAG_DEL, tag, NULL, 0,
	    __func__);
}

/*
 * "path starts with prefix" as the range prefix <= path < upper, where
 * upper is prefix with its last byte below 0xff incremented and what
 * follows cut off.  BINARY collation compares bytes, so this is exact
 * (no LIKE wildcards) and uses the path index.  When there is no such
 * byte (empty prefix, or all 0xff) the bound is an empty blob: SQLite
 * orders every text value before every blob.
 */
long
store_purge_prefix(struct store *st, const char *prefix)
{
	char	*upper;
	size_t	 n;
	long	 ret;

	n = strlen(prefix);
	if ((upper = malloc(n + 1)) == NULL) {
		log_warn("%s", __func__);
		return -1;
	}
	memcpy(upper, prefix, n + 1);
	while (n > 0 && (unsigned char)upper[n - 1] == 0xff)
		n--;
	if (n > 0)
		upper[n - 1] = (char)((unsigned char)upper[n - 1] + 1);
	ret = delete_where(st, S_PFX_SUM, S_PFX_DEL, prefix, upper, (int)n,
	    __func__);
	free(upper);
	return ret;
}

long
store_purge_all(struct store *st)
{
	sqlite3_stmt	*d = st->stmt[S_ALL_DEL];
	uint64_t	 evicted = 0;
	long		 n;

	if (begin(st, __func__) == -1)
		return -1;
	/* written first, so that they are counted as purged */
	if (write_queue(st, &evicted) == -1)
		goto fail;
	/* tags first, so the trigger finds none to delete row by row */
	if (run(st, S_ALL_TAGS, __func__) == -1)
		goto fail;
	if (sqlite3_step(d) != SQLITE_DONE) {
		db_fail(st, __func__);
		sqlite3_reset(d);
		goto fail;
	}
	n = sqlite3_changes(st->db);
	sqlite3_reset(d);
	/* written and deleted: the delete reported their files */
	queue_clear(st, 1);
	if (commit(st, __func__) == -1)
		return -1;
	st->evictions += evicted;
	st->count = 0;
	st->bytes = 0;
	st->ntouch = 0;
	return n;
 fail:
	rollback(st);
	queue_clear(st, 0);
	return -1;
}

uint64_t
store_bytes(struct store *st)
{
	(void)store_flush(st);
	return st->bytes;
}

uint64_t
store_count(struct store *st)
{
	(void)store_flush(st);
	return st->count;
}

uint64_t
store_evictions(struct store *st)
{
	(void)store_flush(st);
	return st->evictions;
}

size_t
store_queued(const struct store *st)
{
	return st->nq;
}

uint64_t
store_checkpoints(struct store *st)
{
	return st->ckpt != NULL ? ckpt_passes(st->ckpt) : 0;
}

uint64_t
store_wal_bytes(struct store *st)
{
	return st->wal_frames > 0 && st->page > 0 ?
	    (uint64_t)st->wal_frames * (uint64_t)st->page : 0;
}

int
store_check(struct store *st)
{
	int	 corrupt = 0;

	return check_ok(st, "PRAGMA integrity_check", &corrupt) == 1;
}
