/* summary.c: every figure of `memsup report` as one cJSON object: rates
 * over the covered period, intervals, growth per worker life, medians at
 * restart, state, downtime, classifications, and the mappings and gauges
 * that grew most.  Linear in the records after one sort of each kind:
 * lives and restarts are matched by pid through hash tables.
 */
#include <errno.h>
#include <math.h> /* NAN and isfinite() only: memsup does not link libm */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define num ms_report_num
#define add_num ms_report_add_num
#define median ms_report_median

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

double ms_report_median(double* v, size_t n) {
  if (n == 0) return NAN;
  qsort(v, n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int by_time(const void* a, const void* b) {
  const restart_t *x = a, *y = b;
  return (x->t > y->t) - (x->t < y->t);
}

/* By life (slot, then pid), then time: each life's samples in a run. */
static int by_pid_time(const void* a, const void* b) {
  const point_t *x = a, *y = b;
  if (x->slot != y->slot) return (x->slot > y->slot) - (x->slot < y->slot);
  if (x->pid != y->pid) return (x->pid > y->pid) - (x->pid < y->pid);
  return (x->t > y->t) - (x->t < y->t);
}

static int by_sum(const void* a, const void* b) {
  const tally_t *x = a, *y = b;
  if (x->sum != y->sum) return (x->sum < y->sum) - (x->sum > y->sum);
  return strcmp(x->name, y->name);
}

/* Least-squares slope of footprint (MiB) over time (minutes).  Times are
 * taken relative to the first sample so epoch seconds do not eat the
 * precision of the sums. */
static double slope(const point_t* p, size_t n) {
  double mx = 0, my = 0, sxy = 0, sxx = 0;
  for (size_t i = 0; i < n; i++) {
    mx += (p[i].t - p[0].t) / 60;
    my += p[i].fp / MIB;
  }
  mx /= n;
  my /= n;
  for (size_t i = 0; i < n; i++) {
    double dx = (p[i].t - p[0].t) / 60 - mx;
    sxy += dx * (p[i].fp / MIB - my);
    sxx += dx * dx;
  }
  return sxx > 0 ? sxy / sxx : NAN;
}

/* The real restarts that ended (ending) and started each life: the first
 * in time of each, as restarts are sorted by time.  Lives are (slot, pid):
 * in a pool each slot has its own pids and gens. */
typedef struct {
  ms_table_t ending, starting; /* ms_report_life_key() -> index in d->rs */
} ends_t;

static int ends_build(const data_t* d, ends_t* e) {
  const restart_t* r = d->rs.v;
  for (size_t i = 0; i < d->rs.n; i++) {
    if (r[i].dry) continue;
    if (ms_table_put_num(&e->ending,
                         ms_report_life_key(r[i].slot, r[i].old_pid), i) < 0 ||
        ms_table_put_num(&e->starting,
                         ms_report_life_key(r[i].slot, r[i].new_pid), i) < 0)
      return -ENOMEM;
  }
  return 0;
}

static const restart_t* life_restart(const data_t* d, const ends_t* e,
                                     const life_t* l, int ending) {
  const size_t* i = ms_table_get_num(ending ? &e->ending : &e->starting,
                                     ms_report_life_key(l->slot, l->pid));
  return i ? (const restart_t*)d->rs.v + *i : NULL;
}

/* A gauges object searched by name: directly when small, through a table
 * when big, so a life's gauges cost O(gauges), not O(gauges^2) (the SDK
 * sends up to 64; a hand-made log can hold thousands in one line). */
#define GAUGES_SCAN 8

typedef struct {
  const cJSON* o;
  const cJSON** items; /* NULL: search o directly */
  ms_table_t byname;   /* name -> index in items */
} gauges_t;

static int gauges_index(gauges_t* x, const cJSON* o) {
  const cJSON* g;
  size_t n = 0;
  memset(x, 0, sizeof(*x));
  x->o = o;
  if (cJSON_GetArraySize(o) <= GAUGES_SCAN) return 0;
  if ((x->items = calloc((size_t)cJSON_GetArraySize(o), sizeof(*x->items))) ==
      NULL)
    return -ENOMEM;
  cJSON_ArrayForEach(g, o) {
    /* The first of a repeated name wins, as in cJSON's own lookup. */
    if (g->string && ms_table_put_str(&x->byname, g->string, n) < 0)
      return -ENOMEM;
    x->items[n++] = g;
  }
  return 0;
}

static double gauges_num(const gauges_t* x, const char* name) {
  if (name == NULL) return NAN;
  if (x->items == NULL) return num(x->o, name);
  const size_t* i = ms_table_get_str(&x->byname, name);
  return i && cJSON_IsNumber(x->items[*i]) ? x->items[*i]->valuedouble : NAN;
}

static void gauges_free(gauges_t* x) {
  free(x->items);
  ms_table_free(&x->byname);
}

/* Fills every life's rate and tallies each gauge's growth over the life:
 * its value at the ending restart (or last sample) minus its first sample
 * value (or the starting restart's after, or the ending restart's after,
 * which is the value a fresh worker starts from). */
static int lives(data_t* d, tallies_t* gauges) {
  const point_t* p = d->pts.v;
  const restart_t* r = d->rs.v;
  const cJSON* g;
  ends_t ends = {{0}, {0}};
  int err = -ENOMEM;
  for (size_t i = 0; i < d->rs.n; i++)
    if (!r[i].dry &&
        ((r[i].old_pid && !ms_report_life(d, r[i].slot, r[i].old_pid)) ||
         (r[i].new_pid && !ms_report_life(d, r[i].slot, r[i].new_pid))))
      goto end;
  for (size_t i = 0, j; i < d->pts.n; i = j) {
    for (j = i; j < d->pts.n && p[j].pid == p[i].pid && p[j].slot == p[i].slot;)
      j++;
    /* Exists: loading made it. */
    life_t* l = ms_report_life(d, p[i].slot, p[i].pid);
    l->samples = j - i;
    if (j - i >= 3) l->rate = slope(p + i, j - i);
  }
  if (ends_build(d, &ends) < 0) goto end;
  life_t* l = d->lives.v;
  for (size_t i = 0; i < d->lives.n; i++) {
    const restart_t* e = l[i].pid ? life_restart(d, &ends, &l[i], 1) : NULL;
    const restart_t* s = l[i].pid ? life_restart(d, &ends, &l[i], 0) : NULL;
    if (!isfinite(l[i].rate) && e && e->uptime_s > 0) {
      double from = s && isfinite(s->after[0]) ? s->after[0] : 0;
      l[i].rate = (e->before[0] - from) / e->uptime_s * 60 / MIB;
    }
    const cJSON* last = e && e->g_before ? e->g_before : l[i].g_last;
    gauges_t from[3] = {{0}}; /* where a gauge's first value may be */
    int bad = gauges_index(&from[0], l[i].g_first) < 0 ||
              gauges_index(&from[1], s ? s->g_after : NULL) < 0 ||
              gauges_index(&from[2], e ? e->g_after : NULL) < 0;
    if (bad) last = NULL;
    cJSON_ArrayForEach(g, last) {
      double first = gauges_num(&from[0], g->string);
      if (!isfinite(first) && s) first = gauges_num(&from[1], g->string);
      if (!isfinite(first) && e) first = gauges_num(&from[2], g->string);
      if (cJSON_IsNumber(g) && isfinite(first) &&
          ms_report_tally(gauges, g->string, g->valuedouble - first) < 0) {
        bad = 1;
        break;
      }
    }
    for (int k = 0; k < 3; k++) gauges_free(&from[k]);
    if (bad) goto end;
  }
  err = 0;
end:
  ms_table_free(&ends.ending);
  ms_table_free(&ends.starting);
  return err;
}

static cJSON* tally_obj(const tallies_t* ts) {
  const tally_t* t = ts->items.v;
  cJSON* o = cJSON_CreateObject();
  for (size_t i = 0; i < ts->items.n; i++)
    cJSON_AddNumberToObject(o, t[i].name, t[i].n);
  return o;
}

/* Sorted by sum, at most top items (0: all).  The sort leaves the name
 * table stale: nothing is tallied after this. */
static cJSON* tally_list(tallies_t* ts, const char* sum_key, const char* n_key,
                         const char* mean_key, size_t top) {
  vec_t* v = &ts->items;
  tally_t* t = v->v;
  cJSON* a = cJSON_CreateArray();
  if (v->n) qsort(t, v->n, sizeof(*t), by_sum);
  for (size_t i = 0; i < v->n && (top == 0 || i < top); i++) {
    cJSON* o = cJSON_CreateObject();
    cJSON_AddItemToArray(a, o);
    cJSON_AddStringToObject(o, "name", t[i].name);
    cJSON_AddNumberToObject(o, sum_key, t[i].sum);
    cJSON_AddNumberToObject(o, n_key, t[i].n);
    if (mean_key) cJSON_AddNumberToObject(o, mean_key, t[i].sum / t[i].n);
  }
  return a;
}

/* Pearson's r of c's pairs, NAN when either side never moved.  sqrt is
 * in libm, which memsup does not link: r^2 is computed and its sign kept,
 * and the root taken by Newton's method (a few steps from 1 suffice to
 * rank and print two digits). */
static double corr_r(const corr_t* c) {
  double n = c->n;
  if (n < 2) return NAN;
  double vx = c->sxx - c->sx * c->sx / n, vy = c->syy - c->sy * c->sy / n;
  double cov = c->sxy - c->sx * c->sy / n;
  if (!(vx > 0) || !(vy > 0)) return NAN;
  double r2 = cov * cov / (vx * vy), r = 1;
  if (r2 > 1) r2 = 1;
  for (int i = 0; i < 40 && r > 0; i++) r = (r + r2 / r) / 2;
  return cov < 0 ? -r : r;
}

typedef struct {
  const tally_t* t;
  double r;
} ranked_t;

/* Best-tracking first (r high), gauges whose r is unknown last, then by
 * growth, then by name. */
static int by_r(const void* a, const void* b) {
  const ranked_t *x = a, *y = b;
  int fx = isfinite(x->r), fy = isfinite(y->r);
  if (fx != fy) return fy - fx;
  if (fx && x->r != y->r) return (x->r < y->r) - (x->r > y->r);
  return by_sum(x->t, y->t);
}

/* The gauges that did not shrink over lives (summed growth >= 0; one that
 * shrank is no suspect), ranked by how well they track the footprint:
 * a cache grows with the memory and falls back with it at a restart (r
 * near 1), a request counter that the state carries on keeps climbing
 * while the footprint falls (r low), however big its growth. */
static cJSON* gauge_list(const data_t* d, const tallies_t* ts, size_t top) {
  const tally_t* t = ts->items.v;
  ranked_t* v = calloc(ts->items.n + 1, sizeof(*v));
  cJSON* a = cJSON_CreateArray();
  size_t n = 0;
  if (v == NULL || a == NULL) {
    free(v);
    cJSON_Delete(a);
    return NULL;
  }
  for (size_t i = 0; i < ts->items.n; i++) {
    if (!(t[i].sum >= 0)) continue;
    const size_t* at = ms_table_get_str(&d->corr_byname, t[i].name);
    v[n].t = &t[i];
    v[n++].r = at ? corr_r((const corr_t*)d->corr.v + *at) : NAN;
  }
  if (n) qsort(v, n, sizeof(*v), by_r);
  for (size_t i = 0; i < n && (top == 0 || i < top); i++) {
    cJSON* o = cJSON_CreateObject();
    cJSON_AddItemToArray(a, o);
    cJSON_AddStringToObject(o, "name", v[i].t->name);
    add_num(o, "r", v[i].r);
    cJSON_AddNumberToObject(o, "growth", v[i].t->sum);
    cJSON_AddNumberToObject(o, "lives", v[i].t->n);
    cJSON_AddNumberToObject(o, "per_life", v[i].t->sum / v[i].t->n);
  }
  free(v);
  return a;
}

/* Median of field k of before (after=0) or after (1) over restarts. */
static double rs_median(const data_t* d, double* buf, int after, int k) {
  const restart_t* r = d->rs.v;
  size_t n = 0;
  for (size_t i = 0; i < d->rs.n; i++) {
    double v = after ? r[i].after[k] : r[i].before[k];
    if (isfinite(v)) buf[n++] = v;
  }
  return median(buf, n);
}

static cJSON* mem_obj(const data_t* d, double* buf, int after) {
  cJSON* o = cJSON_CreateObject();
  add_num(o, "footprint", rs_median(d, buf, after, 0));
  add_num(o, "rss", rs_median(d, buf, after, 1));
  add_num(o, "heap", rs_median(d, buf, after, 2));
  return o;
}

cJSON* ms_report_summarize(data_t* d, char** files, int nfiles, size_t top) {
  tallies_t gauges;
  restart_t* r = d->rs.v;
  double hours = (d->t1 - d->t0) / 3600, sum = 0, max = NAN;
  size_t n = 0;
  cJSON *s = NULL, *o, *a;
  memset(&gauges, 0, sizeof(gauges));
  if (d->rs.n) qsort(r, d->rs.n, sizeof(*r), by_time);
  if (d->pts.n) qsort(d->pts.v, d->pts.n, sizeof(point_t), by_pid_time);
  double* buf = NULL;
  if (lives(d, &gauges) < 0 ||
      (buf = malloc((d->rs.n + d->lives.n + 1) * sizeof(*buf))) == NULL)
    goto end;
  s = cJSON_CreateObject();
  cJSON_AddItemToObject(s, "files", a = cJSON_CreateArray());
  for (int i = 0; i < nfiles; i++)
    cJSON_AddItemToArray(a, cJSON_CreateString(files[i]));
  cJSON_AddNumberToObject(s, "lines", d->lines);
  cJSON_AddNumberToObject(s, "skipped", d->skipped);
  cJSON_AddNumberToObject(s, "clamped", d->clamped);

  cJSON_AddItemToObject(s, "period", o = cJSON_CreateObject());
  if (d->lines > d->skipped) {
    cJSON_AddStringToObject(o, "start", d->t0s);
    cJSON_AddStringToObject(o, "end", d->t1s);
    cJSON_AddNumberToObject(o, "hours", hours);
  } else {
    cJSON_AddNullToObject(o, "start");
    cJSON_AddNullToObject(o, "end");
    cJSON_AddNullToObject(o, "hours");
  }

  cJSON_AddItemToObject(s, "restarts", o = cJSON_CreateObject());
  cJSON_AddNumberToObject(o, "total", (double)d->rs.n);
  cJSON_AddItemToObject(o, "by_reason", tally_obj(&d->reasons));
  cJSON_AddNumberToObject(o, "dry_run", d->dry);
  cJSON_AddNumberToObject(o, "crashes", d->crashes);
  cJSON_AddNumberToObject(o, "purges", d->purges);
  add_num(o, "per_hour", hours > 0 ? d->rs.n / hours : NAN);
  add_num(o, "per_day", hours > 0 ? d->rs.n / hours * 24 : NAN);
  cJSON_AddNumberToObject(o, "not_helped", d->not_helped);
  /* The rate as it was seen: N restarts over the seconds covered, and the
   * mean time between them; text.c prints per hour or per day only when
   * the period covers one. */
  add_num(o, "over_s", d->lines > d->skipped ? d->t1 - d->t0 : NAN);
  add_num(o, "every_s", d->rs.n && hours > 0 ? hours * 3600 / d->rs.n : NAN);

  for (size_t i = 1; i < d->rs.n; i++) sum += buf[n++] = r[i].t - r[i - 1].t;
  cJSON_AddItemToObject(s, "interval_s", o = cJSON_CreateObject());
  add_num(o, "mean", n ? sum / n : NAN);
  add_num(o, "median", median(buf, n));

  cJSON_AddItemToObject(s, "growth_mib_per_min", o = cJSON_CreateObject());
  cJSON_AddItemToObject(o, "lives", a = cJSON_CreateArray());
  n = 0;
  for (size_t i = 0; i < d->lives.n; i++) {
    const life_t* l = (const life_t*)d->lives.v + i;
    if (!isfinite(l->rate)) continue;
    cJSON* e = cJSON_CreateObject();
    cJSON_AddItemToArray(a, e);
    cJSON_AddNumberToObject(e, "pid", l->pid);
    if (l->slot >= 0) cJSON_AddNumberToObject(e, "slot", l->slot);
    cJSON_AddNumberToObject(e, "rate", buf[n++] = l->rate);
    cJSON_AddNumberToObject(e, "samples", (double)l->samples);
    cJSON_AddStringToObject(e, "from", l->samples >= 3 ? "samples" : "restart");
  }
  add_num(o, "median", median(buf, n));

  cJSON_AddItemToObject(s, "before", mem_obj(d, buf, 0));
  cJSON_AddItemToObject(s, "after", mem_obj(d, buf, 1));

  n = 0;
  for (size_t i = 0; i < d->rs.n; i++)
    if (isfinite(r[i].state_bytes)) buf[n++] = r[i].state_bytes;
  cJSON_AddItemToObject(s, "state", o = cJSON_CreateObject());
  add_num(o, "median_bytes", median(buf, n));
  cJSON_AddItemToObject(o, "outcomes", tally_obj(&d->outcomes));

  n = 0;
  for (size_t i = 0; i < d->rs.n; i++)
    if (isfinite(r[i].downtime_ms)) {
      buf[n++] = r[i].downtime_ms;
      if (!(r[i].downtime_ms <= max)) max = r[i].downtime_ms;
    }
  cJSON_AddItemToObject(s, "downtime_ms", o = cJSON_CreateObject());
  add_num(o, "median", median(buf, n));
  add_num(o, "max", max);
  /* Downtime is known only for restarts whose new worker said ready (the
   * SDK); the others have null and are not in the median. */
  add_num(o, "known", (double)n);
  if (ms_report_pool(d, s) < 0) {
    cJSON_Delete(s);
    s = NULL;
    goto end;
  }

  cJSON_AddItemToObject(s, "classification", tally_obj(&d->classes));
  cJSON_AddItemToObject(
      s, "mappings",
      tally_list(&d->maps, "private_dirty", "restarts", NULL, top));
  cJSON_AddItemToObject(
      s, "grew", tally_list(&d->grew, "growth", "restarts", NULL, top));
  cJSON_AddItemToObject(
      s, "processes", tally_list(&d->procs, "footprint", "restarts", NULL, top));
  if ((o = gauge_list(d, &gauges, top)) == NULL) {
    cJSON_Delete(s);
    s = NULL;
    goto end;
  }
  cJSON_AddItemToObject(s, "gauges", o);
end:
  ms_report_tallies_free(&gauges);
  free(buf);
  return s;
}
