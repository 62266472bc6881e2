/* cause.h: which of the worker's own gauges moves with its footprint.
 * An unbounded cache looks like a leak from outside; what tells them
 * apart is a gauge the worker reports (cache.entries) that grows with the
 * footprint and falls back with it at a restart, while a counter the
 * state carries across restarts (requests) keeps growing.  The slot keeps
 * a short series of (footprint, gauge values) over its last lives and,
 * per gauge, whether it fell back at the last restart.  Pure: no I/O, no
 * clock, no allocation.
 */
#ifndef MS_CAUSE_H
#define MS_CAUSE_H

#include <stdint.h>

#include "heap.h"

#define MS_CAUSE_GAUGES 8   /* gauges followed (the first reported) */
#define MS_CAUSE_POINTS 64  /* points kept, across lives */
/* Points are about this far apart (a new point starts once the newest is
 * this far from the one before it): 64 of them cover 12-16 s, two or
 * three lives of a worker restarted every few seconds. */
#define MS_CAUSE_EVERY_NS 250000000ull
/* "Tracks the footprint": Pearson correlation at least this. */
#define MS_CAUSE_MIN_R 0.8
/* "Fell back at a restart": its first value in the new life is below
 * this share of its last value in the old one. */
#define MS_CAUSE_FALLBACK_PCT 50

typedef struct {
  char name[MS_HEAP_GAUGE_NAME_MAX];
  double v[MS_CAUSE_POINTS]; /* per point; NAN when not reported then */
  double life_first, life_last; /* this life's first and last value */
  int has_life;                 /* a value was seen in this life */
  int had_life;                 /* ... or in an earlier one */
  int fell_back;   /* at the last restart: 1 fell back, 0 did not, -1 no
                      restart seen with this gauge yet */
} ms_cause_gauge_t;

typedef struct {
  uint64_t t_ns[MS_CAUSE_POINTS];
  double fp[MS_CAUSE_POINTS]; /* footprint, MiB */
  unsigned head, n;
  unsigned ngauges;
  ms_cause_gauge_t g[MS_CAUSE_GAUGES];
} ms_cause_t;

/* The best gauge for ms_cause_best(). */
typedef struct {
  int found;            /* a gauge tracks the footprint and grew */
  char name[MS_HEAP_GAUGE_NAME_MAX];
  double r;             /* its correlation with footprint, -1..1 */
  int fell_back;        /* as in ms_cause_gauge_t */
  double first, last;   /* its values in this life */
} ms_cause_best_t;

void ms_cause_init(ms_cause_t* c);
/* A new worker of the slot starts: this life's first/last restart, and
 * the gauges' fall-back is judged at their first value in it. */
void ms_cause_new_life(ms_cause_t* c);
/* A measured footprint at t_ns with the worker's latest gauges (heap may
 * be NULL: no SDK).  Points closer than MS_CAUSE_EVERY_NS to the one before
 * replace it. */
void ms_cause_add(ms_cause_t* c, uint64_t t_ns, uint64_t footprint,
                  const ms_heap_t* heap);
/* The gauge that tracks the footprint best over the series (r >=
 * MS_CAUSE_MIN_R, grew in this life); out->found 0 when none does. */
void ms_cause_best(const ms_cause_t* c, ms_cause_best_t* out);
/* Whether a purge can give anything back: heap-in-use unknown, or at
 * least 1/MS_CAUSE_PURGE_SHARE of the footprint not in use (with
 * heap-in-use about the footprint there is nothing to give back). */
#define MS_CAUSE_PURGE_SHARE 8
int ms_cause_purge_useful(uint64_t footprint, int has_heap,
                          uint64_t heap_allocated);

/* Pearson correlation of x and y over n points, skipping pairs where
 * either is NaN; 0 when fewer than 3 pairs or either does not vary. */
double ms_cause_corr(const double* x, const double* y, unsigned n);

#endif
