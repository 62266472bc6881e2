/* sample.h: a worker's memory as the kernel sees it, read from /proc.
 *
 * Two sources with very different costs (docs/memory.md has the figures):
 * /proc/PID/status is O(1) (~20 us) and gives RSS split into anon, file and
 * shmem plus swap; /proc/PID/smaps_rollup walks every mapping (27 ms at
 * 65,000 mappings) and gives Anonymous, LazyFree, Swap and the Pss fields
 * that footprint needs.  ms_sampler_take() reads status on every tick and
 * the rollup only when it is due (ms_sample_full_due()).
 *
 * Footprint is what the worker could not give back without losing data
 * (docs/memory.md): Anonymous - LazyFree + Swap + shmem; file pages, clean
 * or dirty, are not part of it.
 */
#ifndef MS_SAMPLE_H
#define MS_SAMPLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>


/* Which smaps_rollup fields the running kernel gives (ms_mem_t.have). */
#define MS_HAVE_PSS_SPLIT 1u /* Pss_Anon, Pss_File, Pss_Shmem: Linux >= 5.3 */
#define MS_HAVE_PSS_DIRTY 2u /* Pss_Dirty: Linux >= 6.0 */

/* All figures in bytes.  For --tree they are sums over the worker's
 * session.  The status fields mean the same on every sample (with --tree a
 * page shared by N members counts N times in them); the Pss fields of the
 * rollup count it once. */
typedef struct {
  /* /proc/PID/status, every sample. */
  uint64_t rss;       /* VmRSS: every resident page */
  uint64_t rss_anon;  /* RssAnon (lazy-free pages included) */
  uint64_t rss_file;  /* RssFile: clean or dirty file-backed pages */
  uint64_t rss_shmem; /* RssShmem: memfd, /dev/shm, SysV, tmpfs files */
  uint64_t swap;      /* VmSwap: swapped-out anonymous pages */
  /* /proc/PID/smaps_rollup, only when full != 0. */
  uint64_t private_dirty, private_clean, shared_dirty, shared_clean;
  uint64_t anonymous; /* Anonymous: anon pages, lazy-free ones included */
  uint64_t lazyfree;  /* LazyFree: MADV_FREE'd, the kernel may drop them */
  uint64_t smaps_swap; /* Swap: VmSwap plus swapped shmem */
  uint64_t pss, pss_anon, pss_file, pss_shmem, swap_pss;
  uint64_t pss_dirty; /* 0 and not in have on kernels before 6.0 */
  unsigned have;      /* MS_HAVE_* of the last rollup read */
  /* Derived: full ? ms_footprint() : estimate from status (RssAnon +
   * RssShmem + VmSwap), corrected by the last full read. */
  uint64_t footprint;
  int full;          /* footprint is measured, not estimated */
  unsigned nprocs;   /* processes summed (1 without --tree) */
  uint64_t cost_ns;  /* time this sample took to read */
} ms_mem_t;

/* Footprint of one process from its rollup fields (and rss_shmem from its
 * status):
 *   Anonymous - LazyFree + Swap + RssShmem              (tree = 0)
 *   Pss_Anon - LazyFree + SwapPss + Pss_Shmem            (tree = 1: a
 *                                   session member; a page shared by N
 *                                   processes counts 1/N in each)
 * Lazy-free pages are never shared (the kernel frees only exclusive
 * pages lazily), so their Rss is their Pss.  Without Pss_Anon (Linux <
 * 5.3) a tree member falls back to the first form: pages shared between
 * members then count once per member.  Pure. */
uint64_t ms_footprint(const ms_mem_t* m, int tree);

/* Parsers of the file texts (pure; the unit tests feed fixture files).
 * Unknown lines are ignored; a missing field stays 0.  Return 0, or
 * -EINVAL when the text has none of the expected fields.  Each sets only
 * its own fields; ms_parse_smaps_rollup() also sets have, full = 1 and
 * footprint = ms_footprint(out, 0), so parse status into out first. */
int ms_parse_status(const char* text, ms_mem_t* out);
int ms_parse_smaps_rollup(const char* text, ms_mem_t* out);

/* Whether the next sample should read smaps_rollup too.  Due when any of:
 * no full read yet (last_full_ns == 0); predicted >= near_bytes + 1/64 of
 * it and at least interval since the last full read (clearly over:
 * confirm now); predicted >= near_bytes and at least max(interval,
 * 10 * cost) since it (barely over: confirm, at most ~10% of a core even
 * on a 27 ms read); at least max(1 s, 200 * cost) since the last one
 * (background calibration, at most 0.5% of a core).  Pure. */
int ms_sample_full_due(uint64_t now_ns, uint64_t last_full_ns,
                       uint64_t full_cost_ns, uint64_t interval_ns,
                       uint64_t predicted, uint64_t near_bytes);

/* Per-worker sampling state.  Owns its /proc file descriptors and read
 * buffer; ms_sampler_free() releases them. */
typedef struct {
  pid_t pid;
  int tree;
  uint64_t interval_ns;
  uint64_t last_full_ns;   /* monotonic ns of the last rollup read, 0 none */
  uint64_t full_cost_ns;   /* what that read cost */
  int64_t calib;           /* status estimate minus footprint at that read */
  int status_fd, rollup_fd;
  char* buf;
  size_t bufcap;
  pid_t* pids;             /* --tree: session members, rescanned every 1 s */
  size_t npids, pidcap;
  uint64_t pids_scanned_ns;
  uint64_t desc_next_ns;   /* ms_sampler_descendants(): next check, cost */
  uint64_t desc_cost_ns;
  int desc_found;          /* it returned 1 once: it checks no more */
} ms_sampler_t;

void ms_sampler_init(ms_sampler_t* s, pid_t pid, int tree, uint64_t interval_ns);
void ms_sampler_free(ms_sampler_t* s);
/* Takes one sample at monotonic time now_ns.  near_bytes is where full
 * reads start to matter (the footprint limit, or UINT64_MAX when the
 * decision does not use footprint); force_full reads the rollup anyway
 * (restart evidence).  Returns 0, or -ESRCH when the process is gone (not
 * an error of memsup: its exit callback follows). */
int ms_sampler_take(ms_sampler_t* s, uint64_t now_ns, uint64_t near_bytes,
                    int force_full, ms_mem_t* out);

/* Session id (field 6) of a /proc/PID/stat text, NUL-terminated, into
 * *sid.  Fields are read after the last ')' (the command name, field 2,
 * may hold spaces and parentheses).  Returns 0, or -EINVAL when the text
 * has no ')' or too few fields after it.  Pure (fed by ms_session_pids()
 * and the fuzz target). */
int ms_parse_stat_session(const char* text, pid_t* sid);

/* Session members of sid found by scanning /proc/<pid>/stat (field 6),
 * sid itself first.  Returns the count (<= max) or a negative errno. */
int ms_session_pids(pid_t sid, pid_t* pids, size_t max);

/* One process of a session with its own full read: pid, command name (the
 * kernel's 15-byte comm) and figures (footprint with the Pss forms when
 * tree, so the split adds up to the session's footprint). */
typedef struct {
  pid_t pid;
  char comm[16];
  ms_mem_t mem;
} ms_proc_t;

/* Reads status and smaps_rollup of every member of session sid and stores
 * the max largest, by footprint (rank_rss = 0) or by VmRSS (rank_rss = 1),
 * largest first; *total (if not NULL) gets how many members were read.
 * Members that exit meanwhile are skipped.  Costs one rollup read per
 * member: for restart evidence, not for the tick.  Returns the number
 * stored, or a negative errno (-ESRCH: sid is gone). */
int ms_session_split(pid_t sid, int tree, int rank_rss, ms_proc_t* out,
                     size_t max, size_t* total);

/* Without --tree: what the worker's session holds besides the worker (its
 * descendants, unless they left the session with setsid), from status
 * alone (RssAnon + RssShmem + VmSwap: an upper estimate of footprint). */
typedef struct {
  unsigned nprocs;        /* members other than the worker */
  uint64_t footprint;     /* their summed estimate */
  pid_t top_pid;          /* the member holding the most */
  char top_comm[16];
  uint64_t top_footprint;
} ms_descendants_t;

/* "Far more" than the worker: at least MS_DESC_RATIO times its footprint
 * and MS_DESC_MIN_GAP above it.  Pure. */
#define MS_DESC_RATIO 2
#define MS_DESC_MIN_GAP (16ull << 20)
int ms_descendants_dominate(uint64_t worker, uint64_t others);

/* Whether the worker's descendants hold far more than worker_footprint (a
 * shell wrapper that did not exec, a pre-forking server): then --tree
 * measures what the limit should apply to.  Scans /proc like --tree does,
 * at most once per max(MS_DESC_EVERY_NS, 200 x the last scan's cost), and
 * never again once it has returned 1.  Returns 1, 0 (not due, or not far
 * more), or a negative errno; out holds what a scan found whenever one
 * ran (returns 1, or 0 after a scan). */
#define MS_DESC_EVERY_NS 5000000000ull
int ms_sampler_descendants(ms_sampler_t* s, uint64_t now_ns,
                           uint64_t worker_footprint, ms_descendants_t* out);

#endif
