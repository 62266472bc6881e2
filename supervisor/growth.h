/* growth.h: how fast a worker's footprint grows now, not on average over
 * its life.  A worker that grew at start and then stayed flat is flat; a
 * leak is a line.  The caller adds each measured sample (full reads, not
 * estimates: an estimate counts lazy-free pages and would bend the line)
 * and asks for the least-squares slope over the last window.  Pure: no
 * I/O, no clock, no allocation.
 */
#ifndef MS_GROWTH_H
#define MS_GROWTH_H

#include <stdint.h>

/* Points kept.  They are spaced at least window / (MS_GROWTH_POINTS / 2)
 * apart, so the ring covers the window whatever the sampling rate (a full
 * read every 50 ms near the limit, every second far from it); the newest
 * sample always replaces a point closer than that to the one before. */
#define MS_GROWTH_POINTS 64

typedef struct {
  uint64_t t_ns;
  uint64_t value;
} ms_growth_pt_t;

typedef struct {
  uint64_t window_ns;
  ms_growth_pt_t pt[MS_GROWTH_POINTS]; /* ring, oldest at head */
  unsigned head, n;
} ms_growth_t;

/* An empty estimator over the last window_ns (e.g. 10 s).  Call again for
 * a new worker: a restart starts a new line. */
void ms_growth_init(ms_growth_t* g, uint64_t window_ns);

/* Adds a measured value at monotonic time t_ns.  A point older than the
 * newest is ignored. */
void ms_growth_add(ms_growth_t* g, uint64_t t_ns, uint64_t value);

typedef struct {
  double bps;      /* least-squares slope, bytes/s */
  double r2;       /* how well a line fits, 0..1 (1 when the values are all
                      equal): ~1 for a leak, low for a step or a spike */
  double span_s;   /* time between the first and last point used */
  unsigned n;      /* points used */
  uint64_t first, last, min, max; /* values of those points */
  /* The shape of a jump.  The floor is every point up to the last one
   * within (max - min) / 8 of min; the top starts at the first point at or
   * above (min + max) / 2.  A spike: a long floor seen by several reads,
   * a quick rise, a short top; a leak's floor is its first eighth. */
  double floor_s;     /* first point to the floor's last */
  unsigned floor_n;   /* points in the floor */
  uint64_t floor_max; /* their highest value: a flat floor stays within
                         the eighth */
  double rise_s;      /* the floor's last point to the top's first */
  double high_s;      /* the top's first point to the last point */
} ms_growth_fit_t;

/* Fits the points within window_ns before now_ns.  Returns 0, or -EAGAIN
 * when fewer than 3 points or less than min_span_ns of time are there (a
 * young worker: the slope would measure its start-up, not a trend). */
int ms_growth_rate(const ms_growth_t* g, uint64_t now_ns, uint64_t min_span_ns,
                   ms_growth_fit_t* out);

#endif
