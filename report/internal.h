/* internal.h: what the files of `memsup report` share (not for the rest of
 * memsup, which sees report.h only).  load.c turns log lines into the
 * records below; summary.c computes every figure into one cJSON object,
 * which text.c prints, --json prints as is and compare.c compares, so the
 * three can never disagree; svg.c draws the records.
 */
#ifndef MS_REPORT_INTERNAL_H
#define MS_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "table.h"

#define MIB 1048576.0
#define EXIT_USAGE 100
#define EXIT_IO 111

/* The largest byte count report accepts: the largest double under 2^64
 * (memsup writes uint64_t figures).  Outside [0, this] a figure cannot
 * have come from memsup; it is clamped and counted (data_t.clamped), and
 * converting it to an integer stays defined. */
#define MS_REPORT_BYTES_MAX 18446744073709549568.0 /* 2^64 - 2^11 */

/* Slots report accepts (memsup runs at most 64): a line whose "slot" is
 * not an integer in [0, this) is malformed, so a hand-made log cannot make
 * the per-slot tables huge. */
#define MS_REPORT_SLOTS_MAX 1024

/* Two overlapping restarts closer than this are not counted as down at
 * the same time: the pool starts a waiting slot's restart in the same
 * loop turn as the other's ready, and the log rounds times to 1 us. */
#define MS_REPORT_DOWN_SLACK_S 0.001

typedef struct {
  void* v;
  size_t n, cap;
} vec_t;

/* A sum and count per name, found by name through a table. */
typedef struct {
  char* name;
  double sum;
  int n;
} tally_t;

typedef struct {
  vec_t items;       /* tally_t */
  ms_table_t byname; /* name -> index in items; stale once items is sorted */
} tallies_t;

/* slot is the line's "slot" (--workers N > 1), or -1: no pool. */
typedef struct {
  double t, fp, rss;
  int pid, slot;
} point_t;

/* A crash, purge or wait line, drawn as a marker. */
enum { MS_MARK_CRASH, MS_MARK_PURGE, MS_MARK_WAIT };
typedef struct {
  double t;
  int kind; /* MS_MARK_* */
  int slot;
} mark_t;

/* How one gauge moves with the footprint: sums for Pearson's r over every
 * (gauge, footprint) pair of the logs (samples and restarts' before and
 * after), taken relative to the first pair seen so big counters do not
 * eat the precision of the sums. */
typedef struct {
  char* name;
  double n, x0, y0, sx, sy, sxx, syy, sxy;
  unsigned long stamp; /* the gauges object last added: the first of a
                          repeated name wins, as in cJSON's lookup */
} corr_t;

/* One worker life, keyed by slot and pid (pids are assumed not reused
 * in a slot's log; in a pool, pids and gens are per slot). */
typedef struct {
  int pid, slot;
  size_t samples;
  double rate;    /* MiB/min, NAN if unknown */
  double t_first; /* times of the samples g_first and g_last came from */
  double t_last;
  cJSON* g_first; /* owned copies of the "gauges" objects */
  cJSON* g_last;
} life_t;

/* A restart or would-restart line; dry-run ones end no life. */
typedef struct {
  double t, uptime_s, downtime_ms, state_bytes;
  double decided; /* when the stop began (decided_unix_s), else t */
  double before[3], after[3]; /* footprint, rss, heap; NAN if absent */
  int old_pid, new_pid, dry;
  int slot;           /* -1: no pool */
  int early, ceiling; /* reason "early"; past the hard ceiling */
  double waited_s;    /* waited for another slot's restart; NAN if not */
  /* Down for memory: decided to decided + down_s.  down_how says where
   * down_s came from: 0 up_ms, 1 downtime_ms (ready), 2 an estimate (the
   * new worker's spawn: gone_ms + spawn_ms, or the old one's exit). */
  double down_s;
  int down_how;
  cJSON* g_before; /* owned copies of before.gauges and after.gauges */
  cJSON* g_after;
  char *prof_start, *prof_end; /* owned: prof.start and prof.end, or NULL */
} restart_t;

typedef struct {
  double t0, t1, limit; /* covered period: first and last accepted line */
  char t0s[32], t1s[32];
  int lines, skipped, clamped, crashes, purges, dry, not_helped, waits;
  int nslots;    /* highest "slot" seen + 1; 0: no pool, report as ever */
  int unslotted; /* accepted lines without "slot" */
  vec_t pts, lives, rs;   /* point_t, life_t, restart_t */
  vec_t marks;            /* mark_t: crashes and purges */
  vec_t corr;             /* corr_t, one per gauge name */
  unsigned long corr_objs; /* gauges objects added to corr */
  ms_table_t corr_byname; /* name -> index in corr */
  ms_table_t life_by_pid; /* ms_report_life_key() -> index in lives */
  /* maps: evidence mappings but file-backed ones (library pages, fixed);
   * grew: evidence.grew rows (regions that grew over a life);
   * procs: evidence.processes rows (--tree), footprint by command. */
  tallies_t reasons, outcomes, classes, maps, grew, procs;
} data_t;

/* ---- helpers (load.c) ---------------------------------------------------- */

/* Appends a zeroed element of size bytes; returns it, or NULL. */
void* ms_report_push(vec_t* v, size_t size);
/* Adds x to name's tally (a copy of name is kept).  0 or -ENOMEM. */
int ms_report_tally(tallies_t* t, const char* name, double x);
void ms_report_tallies_free(tallies_t* t);
/* o[key] if it is a number / string / object, else NAN / NULL / NULL. */
double ms_report_num(const cJSON* o, const char* key);
const char* ms_report_str(const cJSON* o, const char* key);
const cJSON* ms_report_obj(const cJSON* o, const char* key);
/* v clamped to [0, MS_REPORT_BYTES_MAX]; *clamped counts each change.
 * NAN stays NAN (absent). */
double ms_report_clamp_bytes(double v, int* clamped);
/* Adds key: v, or key: null when v is not finite. */
void ms_report_add_num(cJSON* o, const char* key, double v);
/* Median of v (sorted in place); NAN when n is 0 (summary.c). */
double ms_report_median(double* v, size_t n);

/* ---- loading (load.c) ---------------------------------------------------- */

/* The key of slot's pid in tables of lives (pid alone when slot is -1). */
static inline int64_t ms_report_life_key(int slot, int pid) {
  return (int64_t)(slot + 1) * 4294967296LL + pid;
}
/* The life of slot's pid, created if new; NULL when out of memory. */
life_t* ms_report_life(data_t* d, int slot, int pid);
/* Takes one line (with or without its newline).  Returns 0 (taken, or
 * skipped and counted as malformed) or -ENOMEM. */
int ms_report_load_line(data_t* d, const char* line, size_t len);
/* Loads every line of f; name is for messages.  0 or -errno (printed). */
int ms_report_load_stream(data_t* d, FILE* f, const char* name);
/* Loads one file, or a comma-separated list of them.  0 or -errno
 * (printed, naming the file). */
int ms_report_load_file(data_t* d, const char* path);
int ms_report_load_list(data_t* d, const char* list);
void ms_report_data_free(data_t* d);

/* ---- figures (summary.c) ------------------------------------------------- */

/* All figures as one object (the --json output); top limits the mapping
 * and gauge lists (0: all).  Sorts d's records by time (restarts) and by
 * pid and time (samples), which svg.c relies on.  NULL when out of
 * memory. */
cJSON* ms_report_summarize(data_t* d, char** files, int nfiles, size_t top);

/* Adds "slots" (one object per slot) and "pool" (their totals and the most
 * slots down for memory at once) to summary when d is a pool's logs (lines
 * with "slot"); nothing otherwise.  Called by ms_report_summarize() once
 * lives have their rates.  0 or -ENOMEM. */
int ms_report_pool(const data_t* d, cJSON* summary);

/* ---- allocation sites (prof.c) ----------------------------------------- */

/* Adds "allocation_sites" to summary from the last restart with both heap
 * profiles (runs jeprof); nothing when no restart named any.  0 or
 * -ENOMEM. */
int ms_report_prof(const data_t* d, cJSON* summary, size_t top);

/* ---- output (text.c, svg.c, compare.c) ----------------------------------- */

/* The item at a dotted path such as "restarts.per_hour", and its number
 * (NAN if absent). */
const cJSON* ms_report_at(const cJSON* o, const char* path);
double ms_report_jnum(const cJSON* o, const char* path);
/* v formatted with f, or "n/a" when not finite; buf holds 32 bytes. */
const char* ms_report_fmt(char buf[32], const char* f, double v);
/* A byte count as "130.2 MiB" (negative as 0 B, huge as the largest), or
 * "n/a" when not finite. */
const char* ms_report_size(char buf[32], double v);
void ms_report_print_text(FILE* f, const cJSON* summary);

/* Draws d (summarized, so sorted) as an SVG into f; inline leaves out the
 * XML declaration, for an HTML page.  0, -ENOMEM or -EIO. */
int ms_report_svg(FILE* f, const data_t* d, char** files, int nfiles,
                  int inline_svg);
/* An HTML page: the summary's text and the chart.  0, -ENOMEM or -EIO. */
int ms_report_html(FILE* f, const data_t* d, const cJSON* summary,
                   char** files, int nfiles);

/* Loads and summarizes the logs of A and B (each a comma-separated list)
 * and compares them; the result is what --compare --json prints.  NULL on
 * failure (message printed). */
cJSON* ms_report_compare(char** ab);
/* The same from two summaries (they gain "per_restart" in mappings). */
cJSON* ms_report_compare_summaries(cJSON* a, cJSON* b, char** ab);
void ms_report_print_compare(FILE* f, const cJSON* c);

#endif
