/* cause.c: gauge series and their correlation with footprint (cause.h). */
#include "cause.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void ms_cause_init(ms_cause_t* c) { memset(c, 0, sizeof(*c)); }

void ms_cause_new_life(ms_cause_t* c) {
  for (unsigned i = 0; i < c->ngauges; i++) c->g[i].has_life = 0;
}

static unsigned slot(const ms_cause_t* c, unsigned i) {
  return (c->head + i) % MS_CAUSE_POINTS;
}

static ms_cause_gauge_t* gauge(ms_cause_t* c, const char* name) {
  for (unsigned i = 0; i < c->ngauges; i++)
    if (strcmp(c->g[i].name, name) == 0) return &c->g[i];
  if (c->ngauges == MS_CAUSE_GAUGES) return NULL;
  ms_cause_gauge_t* g = &c->g[c->ngauges++];
  memset(g, 0, sizeof(*g));
  snprintf(g->name, sizeof(g->name), "%s", name);
  for (unsigned i = 0; i < MS_CAUSE_POINTS; i++) g->v[i] = NAN;
  g->fell_back = -1;
  return g;
}

void ms_cause_add(ms_cause_t* c, uint64_t t_ns, uint64_t footprint,
                  const ms_heap_t* heap) {
  unsigned k;
  if (c->n > 0 && t_ns < c->t_ns[slot(c, c->n - 1)]) return;
  /* The newest point is provisional until MS_CAUSE_EVERY_NS after the one
   * before it (as in growth.c): dense reads near the limit move it. */
  if (c->n >= 2 && t_ns - c->t_ns[slot(c, c->n - 2)] < MS_CAUSE_EVERY_NS) {
    k = slot(c, c->n - 1);
  } else {
    if (c->n == MS_CAUSE_POINTS) {
      c->head = (c->head + 1) % MS_CAUSE_POINTS;
      c->n--;
    }
    k = slot(c, c->n++);
  }
  c->t_ns[k] = t_ns;
  c->fp[k] = (double)footprint / 1048576.0;
  for (unsigned i = 0; i < c->ngauges; i++) c->g[i].v[k] = NAN;
  if (heap == NULL) return;
  for (size_t i = 0; i < heap->ngauges; i++) {
    ms_cause_gauge_t* g = gauge(c, heap->gauges[i].name);
    double v = heap->gauges[i].value;
    if (g == NULL || !isfinite(v)) continue;
    g->v[k] = v;
    if (!g->has_life) {
      /* The first value of a life says whether the gauge fell back at
       * the restart before it. */
      if (g->had_life)
        g->fell_back =
            v * 100 < g->life_last * MS_CAUSE_FALLBACK_PCT ? 1 : 0;
      g->has_life = g->had_life = 1;
      g->life_first = v;
    }
    g->life_last = v;
  }
}

double ms_cause_corr(const double* x, const double* y, unsigned n) {
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, m = 0;
  for (unsigned i = 0; i < n; i++) {
    if (isnan(x[i]) || isnan(y[i])) continue;
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    syy += y[i] * y[i];
    sxy += x[i] * y[i];
    m++;
  }
  if (m < 3) return 0;
  double vx = sxx - sx * sx / m, vy = syy - sy * sy / m;
  double cxy = sxy - sx * sy / m;
  /* Relative tolerance: a constant series must not correlate through
   * rounding noise. */
  if (vx <= 1e-12 * (sxx + 1) || vy <= 1e-12 * (syy + 1)) return 0;
  double r = cxy / sqrt(vx * vy);
  return r > 1 ? 1 : r < -1 ? -1 : r;
}

void ms_cause_best(const ms_cause_t* c, ms_cause_best_t* out) {
  double fp[MS_CAUSE_POINTS], v[MS_CAUSE_POINTS];
  memset(out, 0, sizeof(*out));
  out->fell_back = -1;
  for (unsigned i = 0; i < c->n; i++) fp[i] = c->fp[slot(c, i)];
  for (unsigned j = 0; j < c->ngauges; j++) {
    const ms_cause_gauge_t* g = &c->g[j];
    if (!g->has_life || g->life_last <= g->life_first) continue; /* shrank */
    for (unsigned i = 0; i < c->n; i++) v[i] = g->v[slot(c, i)];
    double r = ms_cause_corr(fp, v, c->n);
    if (r < MS_CAUSE_MIN_R) continue;
    /* One that fell back at a restart beats one that did not, whatever
     * their r: that is the tell of a cache. */
    if (out->found && (g->fell_back == 1) < (out->fell_back == 1)) continue;
    if (out->found && (g->fell_back == 1) == (out->fell_back == 1) &&
        r <= out->r)
      continue;
    out->found = 1;
    snprintf(out->name, sizeof(out->name), "%s", g->name);
    out->r = r;
    out->fell_back = g->fell_back;
    out->first = g->life_first;
    out->last = g->life_last;
  }
}

int ms_cause_purge_useful(uint64_t footprint, int has_heap,
                          uint64_t heap_allocated) {
  if (!has_heap) return 1;
  return footprint > heap_allocated &&
         footprint - heap_allocated >= footprint / MS_CAUSE_PURGE_SHARE;
}
