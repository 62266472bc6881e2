/* sample.h: a worker's memory as the kernel sees it, read from /proc.
 *
 * Two sources with very different costs (see ../shared/MEMORY-FACTS.md):
 * /proc/PID/status is O(1) (~20 us) and gives RSS split into anon, file and
 * shmem plus swap; /proc/PID/smaps_rollup walks every mapping (27 ms at
 * 65,000 mappings) and gives Private_Dirty, LazyFree and the Pss fields
 * that footprint needs.  ms_sampler_take() reads status on every tick and
 * the rollup only when it is due (ms_sample_full_due()).
 */
#ifndef MS_SAMPLE_H
#define MS_SAMPLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* All figures in bytes.  For --tree they are sums over the worker's
 * session, with Pss variants so shared pages count once. */
typedef struct {
  /* /proc/PID/status, every sample. */
  uint64_t rss;       /* VmRSS (tree: sum of Pss when full) */
  uint64_t rss_anon;  /* RssAnon */
  uint64_t rss_file;  /* RssFile: clean or dirty file-backed pages */
  uint64_t rss_shmem; /* RssShmem */
  uint64_t swap;      /* VmSwap (tree+full: SwapPss) */
  /* /proc/PID/smaps_rollup, only when full != 0. */
  uint64_t private_dirty, private_clean, shared_dirty, shared_clean;
  uint64_t pss, pss_dirty, anonymous, lazyfree, swap_pss;
  /* Derived: full ? Private_Dirty + Swap (tree: Pss_Dirty + SwapPss)
   *            : estimate from status, corrected by the last full read. */
  uint64_t footprint;
  int full;          /* footprint is measured, not estimated */
  unsigned nprocs;   /* processes summed (1 without --tree) */
  uint64_t cost_ns;  /* time this sample took to read */
} ms_mem_t;

/* Parsers of the file texts (pure; the unit tests feed fixture files).
 * Unknown lines are ignored; a missing field stays 0.  Return 0, or
 * -EINVAL when the text has none of the expected fields. */
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

/* Session members of sid found by scanning /proc/<pid>/stat (field 6),
 * sid itself first.  Returns the count (<= max) or a negative errno. */
int ms_session_pids(pid_t sid, pid_t* pids, size_t max);

#endif
