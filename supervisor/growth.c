/* growth.c: recent footprint growth by least squares over a ring of
 * measured samples (growth.h).  O(MS_GROWTH_POINTS) per fit. */
#include "growth.h"

#include <errno.h>
#include <string.h>

#define NS_PER_SEC 1e9

void ms_growth_init(ms_growth_t* g, uint64_t window_ns) {
  memset(g, 0, sizeof(*g));
  g->window_ns = window_ns;
}

static ms_growth_pt_t* at(ms_growth_t* g, unsigned i) {
  return &g->pt[(g->head + i) % MS_GROWTH_POINTS];
}

void ms_growth_add(ms_growth_t* g, uint64_t t_ns, uint64_t value) {
  uint64_t gap = g->window_ns / (MS_GROWTH_POINTS / 2);

  if (g->n > 0 && t_ns < at(g, g->n - 1)->t_ns) return;
  /* The newest point is provisional until it is gap after the one before
   * it: dense samples near the limit then move it forward instead of
   * pushing the window's start out of the ring. */
  if (g->n >= 2 && t_ns - at(g, g->n - 2)->t_ns < gap) {
    *at(g, g->n - 1) = (ms_growth_pt_t){t_ns, value};
    return;
  }
  if (g->n == MS_GROWTH_POINTS) {
    g->head = (g->head + 1) % MS_GROWTH_POINTS;
    g->n--;
  }
  *at(g, g->n++) = (ms_growth_pt_t){t_ns, value};
}

/* The jump's shape (growth.h): a second pass over the same points. */
static void jump_shape(const ms_growth_t* g, uint64_t from, uint64_t now_ns,
                       ms_growth_fit_t* out) {
  uint64_t jump = out->max - out->min;
  uint64_t mid = out->min + jump / 2, thr = out->min + jump / 8;
  uint64_t t0 = 0, tlast = 0, tfloor = 0, ttop = 0;
  unsigned i, n = 0, last_floor = 0;
  int seen = 0, top = 0;
  const ms_growth_pt_t* p;

  /* The floor ends at the last point within the eighth before the top. */
  for (i = 0; i < g->n; i++) {
    p = &g->pt[(g->head + i) % MS_GROWTH_POINTS];
    if (p->t_ns < from || p->t_ns > now_ns) continue;
    if (!seen) {
      seen = 1;
      t0 = tfloor = p->t_ns;
    }
    tlast = p->t_ns;
    n++;
    if (!top && jump > 0 && p->value >= mid) {
      top = 1;
      ttop = p->t_ns;
    }
    if (!top && p->value <= thr) {
      last_floor = n;
      tfloor = p->t_ns;
    }
  }
  if (!top) ttop = tlast;
  n = 0;
  for (i = 0; i < g->n && n < last_floor; i++) {
    p = &g->pt[(g->head + i) % MS_GROWTH_POINTS];
    if (p->t_ns < from || p->t_ns > now_ns) continue;
    n++;
    if (p->value > out->floor_max) out->floor_max = p->value;
  }
  out->floor_n = last_floor;
  out->floor_s = (double)(tfloor - t0) / NS_PER_SEC;
  out->rise_s = (double)(ttop - tfloor) / NS_PER_SEC;
  out->high_s = (double)(tlast - ttop) / NS_PER_SEC;
}

int ms_growth_rate(const ms_growth_t* g, uint64_t now_ns, uint64_t min_span_ns,
                   ms_growth_fit_t* out) {
  uint64_t from = now_ns > g->window_ns ? now_ns - g->window_ns : 0;
  double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0, x, y, t0 = 0;
  unsigned i, first = g->n;
  const ms_growth_pt_t* p;

  memset(out, 0, sizeof(*out));
  for (i = 0; i < g->n; i++) {
    p = &g->pt[(g->head + i) % MS_GROWTH_POINTS];
    if (p->t_ns < from || p->t_ns > now_ns) continue;
    if (first == g->n) {
      first = i;
      t0 = (double)p->t_ns;
      out->first = out->min = out->max = p->value;
    }
    /* Seconds and MiB from the first point keep the sums well inside a
     * double's precision. */
    x = ((double)p->t_ns - t0) / NS_PER_SEC;
    y = (double)p->value / 1048576.0;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
    syy += y * y;
    out->n++;
    out->last = p->value;
    out->span_s = x;
    if (p->value < out->min) out->min = p->value;
    if (p->value > out->max) out->max = p->value;
  }
  if (out->n < 3 || out->span_s * NS_PER_SEC < (double)min_span_ns)
    return -EAGAIN;
  jump_shape(g, from, now_ns, out);
  double n = out->n;
  double vx = sxx - sx * sx / n, vy = syy - sy * sy / n, cxy = sxy - sx * sy / n;
  if (vx <= 0) return -EAGAIN; /* all at one instant (window_ns 0) */
  out->bps = cxy / vx * 1048576.0;
  /* All values equal: a flat line fits perfectly. */
  out->r2 = vy <= 1e-12 ? 1.0 : (cxy * cxy) / (vx * vy);
  if (out->r2 > 1) out->r2 = 1;
  return 0;
}
