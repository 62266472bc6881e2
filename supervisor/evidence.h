/* evidence.h: why a worker bloated, captured just before a memory restart
 * destroys the answer.  Two parts: where the memory sits (per-mapping
 * figures of /proc/PID/smaps, grouped by owner) and what kind of bloat it
 * is (footprint vs RSS vs heap-in-use vs growth).  Everything except
 * ms_smaps_read_top() is pure; the caller decides when to capture and
 * where the result goes (the restart log).
 */
#ifndef MS_EVIDENCE_H
#define MS_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "cause.h"
#include "growth.h"
#include "sample.h"

/* Who owns a mapping, from its name in /proc/PID/maps. */
typedef enum {
  MS_MAP_HEAP,   /* "[heap]": brk */
  MS_MAP_ANON,   /* no name, or "[anon:...]": allocator arenas, mmap chunks */
  MS_MAP_FILE,   /* a file path (also a deleted regular file) */
  MS_MAP_STACK,  /* "[stack]", "[stack:tid]" */
  MS_MAP_SHMEM,  /* /dev/shm/..., /memfd:..., SYSV..., "/dev/zero (deleted)"
                    (MAP_SHARED|MAP_ANONYMOUS), "[anon_shmem:...]" */
  MS_MAP_DEVICE, /* other /dev/... files: GPU/DRM, /dev/nvidia* */
  MS_MAP_OTHER   /* "[vdso]", "[vvar]", "[vsyscall]", anything else */
} ms_map_class_t;

/* Class of a mapping name ("" or NULL for anonymous).  Pure. */
ms_map_class_t ms_map_class(const char* name);
/* "heap", "anon", "file", "stack", "shmem", "device", "other". */
const char* ms_map_class_name(ms_map_class_t c);

/* Longer names are cut to this many bytes, and grouped by the cut name. */
#define MS_MAP_NAME_MAX 100

/* One row: all mappings of one (class, name), figures summed, in bytes. */
typedef struct {
  char name[MS_MAP_NAME_MAX + 1]; /* "" for anonymous memory */
  ms_map_class_t cls;
  unsigned count; /* mappings in this row */
  uint64_t size, rss, private_dirty, swap, anonymous, lazyfree;
} ms_mapping_t;

/* A row's share of footprint (docs/memory.md): Anonymous - LazyFree +
 * Swap, plus its resident pages when the class is shmem.  File pages,
 * even dirty ones, are not in it.  (Per-mapping smaps has no Pss split, so
 * a file on a tmpfs mounted elsewhere than /dev/shm shows as a file row
 * here while the rollup counts it as shmem.)  Pure. */
uint64_t ms_mapping_footprint(const ms_mapping_t* r);

/* What rows are ranked by: their footprint (the default metric, and heap),
 * or their RSS (when --metric rss triggered the restart). */
typedef enum { MS_RANK_FOOTPRINT, MS_RANK_RSS } ms_rank_t;

/* Parses the text of /proc/PID/smaps, groups the mappings by (class,
 * name) and stores the max rows with the largest rank key, largest first;
 * ties by class, then name.  Time is linear in the text (a hash table
 * groups the rows) plus a sort of the distinct rows.  Returns the number
 * of rows stored (<= max), -EINVAL when the text has no mapping header,
 * -ENOMEM. */
int ms_smaps_top_by(const char* smaps_text, ms_rank_t rank, ms_mapping_t* out,
                    size_t max);
/* Reads /proc/PID/smaps whole and calls ms_smaps_top_by().  Returns the
 * same, or -ESRCH when the process is gone (or a zombie: no mappings). */
int ms_smaps_read_top_by(pid_t pid, ms_rank_t rank, ms_mapping_t* out,
                         size_t max);
/* The same ranked by footprint (kept for existing callers). */
int ms_smaps_top(const char* smaps_text, ms_mapping_t* out, size_t max);
int ms_smaps_read_top(pid_t pid, ms_mapping_t* out, size_t max);

/* Classification of a worker's memory at restart time: one of six kinds,
 * or an honest "cannot tell".  Rules, checked in this order (thresholds
 * below):
 *   file-backed          rss >= 2 * footprint, rss - footprint >= 16 MiB,
 *                        rss_file >= lazyfree: RSS is mostly mapped-file
 *                        pages (clean, or dirty awaiting writeback).
 *   lazy-free            the same with lazyfree > rss_file: pages freed
 *                        with MADV_FREE, still resident.  Neither counts
 *                        in footprint; they matter only if a container
 *                        limits RSS.
 *   spike                the recent window (fit, growth.h) has a jump of
 *                        at least 16 MiB: a floor (points within 1/8 of
 *                        the jump above the lowest) seen by at least 3
 *                        measured reads over at least 1 s, then a rise of
 *                        at most 3 s and a top of at most 5 s, the floor
 *                        at least twice as long as rise and top together:
 *                        a transient peak, not growth.  (A fast leak whose
 *                        only earlier read is its start-up one has no
 *                        floor of 3 reads, and a leak's floor is its first
 *                        eighth: neither is called a spike.)
 *   allocator-retention  has_heap, footprint >= 2 * heap_allocated and
 *                        footprint - heap_allocated >= 16 MiB: the
 *                        allocator holds freed memory: purge or tune it.
 *   then, when (!has_heap or heap_allocated >= footprint / 2) and the
 *   recent growth is positive (the program holds what it allocated and
 *   keeps adding):
 *     unbounded-cache    a gauge tracks the footprint (gauge.found: r >=
 *                        0.8, grew in this life) and fell back at the last
 *                        restart; the gauge is named.
 *     leak               has_heap and no gauge both tracks the footprint
 *                        and fell back (a counter carried across restarts
 *                        does not fall back).
 *     leak-or-cache      no heap statistics ("link the SDK to tell them
 *                        apart"), or a gauge tracks the footprint but no
 *                        restart has shown yet whether it falls back.
 *   unknown              anything else (no growth data, flat footprint). */
#define MS_CLASSIFY_RATIO 2               /* "much larger than" */
#define MS_CLASSIFY_MIN_GAP (16ull << 20) /* ignore gaps below 16 MiB */
#define MS_CLASSIFY_HEAP_SHARE_PCT 50     /* heap-in-use share of growth */
#define MS_CLASSIFY_SPIKE_MAX_S 5.0       /* longest high part of a spike */
#define MS_CLASSIFY_SPIKE_MAX_RISE_S 3.0  /* floor's last read to the top: a
                                             background read period (1 s)
                                             plus a burst's ramp on a busy
                                             host */

typedef struct {
  uint64_t footprint; /* ms_mem_t.footprint: Anonymous - LazyFree + Swap
                         + shmem */
  uint64_t rss, lazyfree, rss_file;
  int has_heap;                /* the SDK reported allocator statistics */
  uint64_t heap_allocated;     /* heap-in-use (jemalloc stats.allocated) */
  uint64_t heap_resident;      /* what the allocator keeps resident */
  int has_growth;              /* footprint_growth_bps and fit are known */
  double footprint_growth_bps; /* recent growth, bytes/s: the slope over
                                  the last seconds (ms_growth_rate()), not
                                  the average over the whole life */
  ms_growth_fit_t fit;         /* the recent window's fit (growth.h) */
  ms_cause_best_t gauge;       /* the gauge that tracks footprint best */
} ms_classify_in_t;

typedef struct {
  const char* cls; /* static: "file-backed", "lazy-free", "spike",
                      "allocator-retention", "unbounded-cache", "leak",
                      "leak-or-cache" or "unknown" */
  char why[384];   /* one sentence with the figures */
  const char* gauge; /* unbounded-cache: the gauge's name (points into the
                        input), else NULL */
} ms_classify_out_t;

/* Applies the rules above.  Pure. */
void ms_classify(const ms_classify_in_t* in, ms_classify_out_t* out);

/* Regions that grew: one row per (class, name) of the late snapshot whose
 * footprint (ms_mapping_footprint) exceeds its early one, by how much.
 * A region absent from the early rows counts from 0 (the early snapshot
 * keeps the top rows only, so a small region left out early may show its
 * whole size). */
typedef struct {
  char name[MS_MAP_NAME_MAX + 1];
  ms_map_class_t cls;
  uint64_t early, late; /* footprint of the region in each snapshot */
} ms_grew_t;

/* Fills out with at most max rows of regions that grew, largest growth
 * first (ties by class, then name).  Returns the count.  Pure. */
int ms_evidence_grew(const ms_mapping_t* early, int nearly,
                     const ms_mapping_t* late, int nlate, ms_grew_t* out,
                     int max);
/* Adds "grew": [{"name","class","early","late","grew"}...] for n rows
 * (bytes as numbers), or null when n < 0 (no early snapshot).  Returns 0
 * or -1 (out of memory). */
int ms_evidence_add_grew(cJSON* ev, const ms_grew_t* rows, int n);

/* Builds {"classification","why","mappings":[{"name","class","count",
 * "size","rss","private_dirty","swap","anonymous","lazyfree","footprint"}
 * ...]} with byte figures as numbers.  cls may be NULL (no classification
 * keys).  The caller owns the result (cJSON_Delete); NULL when out of
 * memory. */
cJSON* ms_evidence_json(const ms_mapping_t* rows, int n,
                        const ms_classify_out_t* cls);

/* Most processes listed in "processes". */
#define MS_EVIDENCE_PROCS 16

/* Where the evidence rows come from, besides the rows themselves: how
 * they were ranked, whose mappings they are and, with tree, the split of
 * the session by process.  Plain data, so the restart machine can carry
 * it from the threadpool read to the log line. */
typedef struct {
  int tree;
  ms_rank_t rank;
  pid_t top;          /* the process whose mappings are listed */
  int np;             /* procs[] filled (tree only) */
  size_t total;       /* members read (tree only) */
  ms_proc_t procs[MS_EVIDENCE_PROCS];
} ms_evidence_where_t;

/* Reads the evidence now from /proc (the part of ms_evidence_capture()
 * that blocks): with tree the split by process first, then the top max
 * rows of the member that holds the most.  Returns the rows stored (<0:
 * none read, where->top still says whose they would be). */
int ms_evidence_read(pid_t pid, int tree, ms_rank_t rank, ms_mapping_t* rows,
                     size_t max, ms_evidence_where_t* where);
/* Adds "ranked_by", "mappings_pid", "processes" and "nprocs" (see below)
 * to an ms_evidence_json() object.  Returns 0 or -1 (out of memory). */
int ms_evidence_add_where(cJSON* ev, const ms_evidence_where_t* where);

/* Where the memory sits, read now from /proc, as evidence JSON: the
 * ms_evidence_json() object, plus
 *   "ranked_by": "footprint" | "rss",
 *   "mappings_pid": the process whose top max_rows mappings are listed,
 *   "processes": with tree, the session's members holding the most
 *                (MS_EVIDENCE_PROCS at most), largest first, each
 *                {"pid","command","footprint","rss"} (footprint with the
 *                Pss forms, so they add up to the session's), and
 *                "nprocs"; null without tree.
 * With tree the mappings are those of the member that holds the most by
 * rank (a pre-forking server's busiest worker, a wrapper's child), not
 * the leader's.  pid is the worker (the session leader).  Reads
 * smaps_rollup of every member and smaps of one: up to ~0.2 s on a big
 * worker, so once per restart, never on the tick.  Returns NULL when out
 * of memory; a worker gone meanwhile gives empty lists, not NULL. */
cJSON* ms_evidence_capture(pid_t pid, int tree, ms_rank_t rank,
                           size_t max_rows, const ms_classify_out_t* cls);

#endif
