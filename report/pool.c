/* pool.c: the logs of a pool (--workers N > 1, every line with "slot")
 * per slot: memory restarts (reasons "limit" and "early"), waits, crashes,
 * medians of life, downtime and growth, and the most slots down for memory
 * at the same time, which is what "never two down at once" is checked on.
 * Logs without slots get nothing from here: their report is unchanged.
 */
#include <errno.h>
#include <math.h> /* NAN and isfinite() only: memsup does not link libm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define add_num ms_report_add_num
#define median ms_report_median


/* Items grouped by row (a slot + 1; row 0 holds what has no slot):
 * at[start[k] .. start[k + 1]) are row k's indices, in their order.
 * row[i] < 0 leaves item i out.  0 or -ENOMEM. */
typedef struct {
  size_t *at, *start;
} groups_t;

static int group(groups_t* g, const int* row, size_t n, int nrows) {
  g->at = malloc((n + 1) * sizeof(*g->at));
  g->start = calloc((size_t)nrows + 2, sizeof(*g->start));
  if (g->at == NULL || g->start == NULL) return -ENOMEM;
  for (size_t i = 0; i < n; i++)
    if (row[i] >= 0) g->start[row[i] + 2]++;
  for (int k = 2; k < nrows + 2; k++) g->start[k] += g->start[k - 1];
  /* start[k + 1] is the next free place of row k while filling, and ends
   * as row k + 1's start. */
  for (size_t i = 0; i < n; i++)
    if (row[i] >= 0) g->at[g->start[row[i] + 1]++] = i;
  return 0;
}

static void groups_free(groups_t* g) {
  free(g->at);
  free(g->start);
}

/* A min-heap of times: the ends of the restarts down at the moment. */
typedef struct {
  double* v;
  size_t n;
} heap_t;

static void heap_push(heap_t* h, double x) {
  size_t i = h->n++;
  for (; i > 0 && h->v[(i - 1) / 2] > x; i = (i - 1) / 2)
    h->v[i] = h->v[(i - 1) / 2];
  h->v[i] = x;
}

static void heap_pop(heap_t* h) {
  double x = h->v[--h->n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n) break;
    if (c + 1 < h->n && h->v[c + 1] < h->v[c]) c++;
    if (h->v[c] >= x) break;
    h->v[i] = h->v[c];
    i = c;
  }
  if (h->n) h->v[i] = x;
}

/* A restart's index with its decision, so qsort needs no context. */
typedef struct {
  double decided;
  size_t i;
} decision_t;

static int cmp_decided(const void* a, const void* b) {
  const decision_t *x = a, *y = b;
  if (x->decided != y->decided)
    return (x->decided > y->decided) - (x->decided < y->decided);
  return (x->i > y->i) - (x->i < y->i);
}

typedef struct {
  int max;      /* most slots down for memory at once */
  double at;    /* when that was first reached (a decision) */
  int overlaps; /* restarts decided while another was down */
} down_t;

/* The most restarts down at once among the real ones of rs[0..n) (sorted
 * by decision), leaving out those past the hard ceiling when asked.  A
 * restart is down from its decision for down_s, less the slack: one
 * decided within the slack of another's end does not overlap it.  Each
 * decision counts itself and the restarts still down at it. */
static int most_down(const restart_t* rs, const decision_t* by_decided,
                     size_t n, int no_ceiling, down_t* out) {
  heap_t h = {malloc((n + 1) * sizeof(double)), 0};
  if (h.v == NULL) return -ENOMEM;
  memset(out, 0, sizeof(*out));
  out->at = NAN;
  for (size_t k = 0; k < n; k++) {
    const restart_t* r = &rs[by_decided[k].i];
    if (no_ceiling && r->ceiling) continue;
    while (h.n && h.v[0] <= r->decided) heap_pop(&h);
    int now = (int)h.n + 1;
    out->overlaps += now > 1;
    if (now > out->max) {
      out->max = now;
      out->at = r->decided;
    }
    double end = r->decided + r->down_s - MS_REPORT_DOWN_SLACK_S;
    if (end > r->decided) heap_push(&h, end);
  }
  free(h.v);
  return 0;
}

/* "2026-11-21T23:32:58.433Z" for Unix seconds t; null when not finite. */
static void add_time(cJSON* o, const char* key, double t) {
  char buf[40];
  struct tm tm;
  if (!isfinite(t) || t < 0 || t > 253402300799.0) { /* year 9999 */
    cJSON_AddNullToObject(o, key);
    return;
  }
  /* To the nearest ms, as the log's own times are written: 10.05 is
   * 10.0499999 as a double. */
  time_t sec = (time_t)t;
  int ms = (int)((t - (double)sec) * 1000 + 0.5);
  if (ms > 999) {
    sec++;
    ms = 0;
  }
  gmtime_r(&sec, &tm);
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof(buf) - n, ".%03dZ", ms);
  cJSON_AddStringToObject(o, key, buf);
}

/* Counts per row of what is not a restart that ends a life. */
typedef struct {
  double waits, crashes, dry;
} marks_t;

/* The figures of one row (row -1: of all of them) into o.  buf holds as
 * many doubles as restarts or lives. */
static void fill(cJSON* o, const data_t* d, const groups_t* rs,
                 const groups_t* lives, const marks_t* mk, int row,
                 double* buf) {
  const restart_t* r = d->rs.v;
  const life_t* l = d->lives.v;
  size_t a = row < 0 ? 0 : rs->start[row],
         b = row < 0 ? rs->start[d->nslots + 1] : rs->start[row + 1];
  double early = 0, ceiling = 0, waited = 0, waited_s = 0, down_s = 0,
         estimated = 0, waits = 0, crashes = 0, dry = 0, n;
  for (size_t k = a; k < b; k++) {
    const restart_t* x = &r[rs->at[k]];
    early += x->early;
    ceiling += x->ceiling;
    if (isfinite(x->waited_s)) {
      waited++;
      waited_s += x->waited_s;
    }
    down_s += x->down_s;
    estimated += x->down_how == 2;
  }
  for (int k = row < 0 ? 0 : row; k <= (row < 0 ? d->nslots : row); k++) {
    waits += mk[k].waits;
    crashes += mk[k].crashes;
    dry += mk[k].dry;
  }
  cJSON_AddNumberToObject(o, "restarts", (double)(b - a));
  cJSON_AddNumberToObject(o, "early", early);
  cJSON_AddNumberToObject(o, "ceiling", ceiling);
  cJSON_AddNumberToObject(o, "waits", waits);
  cJSON_AddNumberToObject(o, "waited", waited);
  cJSON_AddNumberToObject(o, "waited_s", waited_s);
  cJSON_AddNumberToObject(o, "crashes", crashes);
  cJSON_AddNumberToObject(o, "dry_run", dry);
  n = 0;
  for (size_t k = a; k < b; k++)
    if (isfinite(r[rs->at[k]].uptime_s))
      buf[(size_t)n++] = r[rs->at[k]].uptime_s;
  add_num(o, "life_s", median(buf, (size_t)n));
  /* Between this row's decisions: rs->at holds them in time order of the
   * lines, which for one slot is the order of its decisions. */
  n = 0;
  for (size_t k = a + 1; row >= 0 && k < b; k++)
    buf[(size_t)n++] = r[rs->at[k]].decided - r[rs->at[k - 1]].decided;
  /* The pool's is the summary's own interval_s. */
  if (row >= 0) add_num(o, "interval_s", median(buf, (size_t)n));
  n = 0;
  for (size_t k = a; k < b; k++)
    if (isfinite(r[rs->at[k]].downtime_ms))
      buf[(size_t)n++] = r[rs->at[k]].downtime_ms;
  add_num(o, "downtime_ms", median(buf, (size_t)n));
  cJSON_AddNumberToObject(o, "downtime_known", n);
  cJSON_AddNumberToObject(o, "down_s", down_s);
  cJSON_AddNumberToObject(o, "down_estimated", estimated);
  a = row < 0 ? 0 : lives->start[row];
  b = row < 0 ? lives->start[d->nslots + 1] : lives->start[row + 1];
  for (size_t k = a; k < b; k++) buf[k - a] = l[lives->at[k]].rate;
  add_num(o, "growth_mib_per_min", median(buf, b - a));
  cJSON_AddNumberToObject(o, "lives", (double)(b - a));
}

int ms_report_pool(const data_t* d, cJSON* s) {
  const restart_t* r = d->rs.v;
  const life_t* l = d->lives.v;
  const mark_t* m = d->marks.v;
  int nrows = d->nslots + 1, err = -ENOMEM;
  size_t most = d->rs.n > d->lives.n ? d->rs.n : d->lives.n;
  int *rrow = NULL, *lrow = NULL;
  marks_t* mk = NULL;
  decision_t* by_decided = NULL;
  double* buf = NULL;
  groups_t rs = {NULL, NULL}, lives = {NULL, NULL};
  down_t all, gated;
  if (d->nslots == 0) return 0;
  rrow = malloc((d->rs.n + 1) * sizeof(*rrow));
  lrow = malloc((d->lives.n + 1) * sizeof(*lrow));
  mk = calloc((size_t)nrows, sizeof(*mk));
  by_decided = malloc((d->rs.n + 1) * sizeof(*by_decided));
  buf = malloc((most + 1) * sizeof(*buf));
  if (!rrow || !lrow || !mk || !by_decided || !buf) goto end;
  size_t n = 0;
  for (size_t i = 0; i < d->rs.n; i++) {
    rrow[i] = r[i].dry ? -1 : r[i].slot + 1;
    mk[r[i].slot + 1].dry += r[i].dry;
    if (!r[i].dry) by_decided[n++] = (decision_t){r[i].decided, i};
  }
  for (size_t i = 0; i < d->lives.n; i++)
    lrow[i] = isfinite(l[i].rate) ? l[i].slot + 1 : -1;
  for (size_t i = 0; i < d->marks.n; i++) {
    mk[m[i].slot + 1].waits += m[i].kind == MS_MARK_WAIT;
    mk[m[i].slot + 1].crashes += m[i].kind == MS_MARK_CRASH;
  }
  if (group(&rs, rrow, d->rs.n, nrows) < 0 ||
      group(&lives, lrow, d->lives.n, nrows) < 0)
    goto end;
  if (n) qsort(by_decided, n, sizeof(*by_decided), cmp_decided);
  if (most_down(r, by_decided, n, 0, &all) < 0 ||
      most_down(r, by_decided, n, 1, &gated) < 0)
    goto end;

  cJSON *a, *o;
  cJSON_AddItemToObject(s, "slots", a = cJSON_CreateArray());
  for (int row = 0; row < nrows; row++) {
    /* Lines without a slot in a pool's logs: another run of memsup
     * appended to the same file.  Listed only when they hold something. */
    if (row == 0 && rs.start[1] == 0 && lives.start[1] == 0 &&
        mk[0].waits + mk[0].crashes + mk[0].dry == 0)
      continue;
    cJSON_AddItemToArray(a, o = cJSON_CreateObject());
    if (row == 0)
      cJSON_AddNullToObject(o, "slot");
    else
      cJSON_AddNumberToObject(o, "slot", row - 1);
    fill(o, d, &rs, &lives, mk, row, buf);
  }
  cJSON_AddItemToObject(s, "pool", o = cJSON_CreateObject());
  cJSON_AddNumberToObject(o, "slots", d->nslots);
  fill(o, d, &rs, &lives, mk, -1, buf);
  cJSON_AddNumberToObject(o, "max_down", all.max);
  add_time(o, "max_down_at", all.at);
  cJSON_AddNumberToObject(o, "max_down_without_ceiling", gated.max);
  cJSON_AddNumberToObject(o, "overlaps", all.overlaps);
  err = 0;
end:
  groups_free(&rs);
  groups_free(&lives);
  free(rrow);
  free(lrow);
  free(mk);
  free(by_decided);
  free(buf);
  return err;
}
