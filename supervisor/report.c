/* report.c: `memsup report`, the reader of memsup's own JSON-lines logs
 * (--log and --sample-log lines, in any order or mix).  Loading turns each
 * line into a small record; summarize() computes every figure into one
 * cJSON object, which the text output, --json and --compare all print, so
 * the three can never disagree.  The SVG is drawn from the records.
 */
#include "report.h"

#include <errno.h>
#include <limits.h>
#include <math.h> /* NAN and isfinite() only: memsup does not link libm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "log.h"

#define MIB 1048576.0
#define TOP 5
#define EXIT_USAGE 100
#define EXIT_IO 111

typedef struct {
  void* v;
  size_t n, cap;
} vec_t;

typedef struct {
  char* name;
  double sum;
  int n;
} tally_t;

typedef struct {
  double t, fp, rss;
  int pid;
} point_t;

/* One worker life, keyed by pid (pids are assumed not reused in a log). */
typedef struct {
  int pid;
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
  double before[3], after[3]; /* footprint, rss, heap; NAN if absent */
  int old_pid, new_pid, dry;
  cJSON* g_before; /* owned copies of before.gauges and after.gauges */
  cJSON* g_after;
} restart_t;

typedef struct {
  double t0, t1, limit; /* covered period: first and last accepted line */
  char t0s[32], t1s[32];
  int lines, skipped, crashes, purges, dry, not_helped;
  vec_t pts, lives, rs;                   /* point_t, life_t, restart_t */
  vec_t reasons, outcomes, classes, maps; /* tally_t */
} data_t;

static const char* const usage_text =
    "usage: memsup report [--json] [--svg FILE] LOG [LOG...]\n"
    "       memsup report [--json] --compare A B\n"
    "\n"
    "Summarizes memsup logs (--log and --sample-log files, in any order).\n"
    "Malformed or torn lines are skipped and counted.\n"
    "  --json        print the figures as one JSON object (keys below)\n"
    "  --svg FILE    draw footprint and rss over time, the limit and one\n"
    "                marker (class=\"restart\") per memory restart\n"
    "  --compare A B before/after a fix; A and B are a log or a\n"
    "                comma-separated list of logs\n"
    "\n"
    "Memory restarts are restart and would-restart (dry-run) events.  Rates\n"
    "divide by the covered period: first to last valid line of all logs.\n"
    "Growth per life is the least-squares slope of footprint over the\n"
    "worker's sample lines when it has 3 or more, else (footprint before\n"
    "its ending restart - footprint after its starting restart, or 0) /\n"
    "uptime.  Sizes are bytes, null when unknown.\n"
    "\n"
    "--json keys:\n"
    "  files, lines (non-blank), skipped (malformed lines)\n"
    "  period {start, end, hours}\n"
    "  restarts {total, by_reason{}, dry_run, crashes, purges, per_hour,\n"
    "            per_day, not_helped}\n"
    "  interval_s {mean, median}          between memory restarts\n"
    "  growth_mib_per_min {median, lives[{pid, rate, samples, from}]}\n"
    "  before, after {footprint, rss, heap}  medians at restart\n"
    "  state {median_bytes, outcomes{}}\n"
    "  downtime_ms {median, max}\n"
    "  classification {}                  evidence classification counts\n"
    "  mappings [{name, private_dirty, restarts}]  top 5, summed over\n"
    "           restarts' evidence\n"
    "  gauges [{name, growth, lives, per_life}]  top 5; growth is summed\n"
    "           over lives of (value at restart - first value of the life)\n"
    "--compare --json keys:\n"
    "  a, b {files, growth_mib_per_min, restarts_per_hour, restarts, hours}\n"
    "  stopped_growing, still_growing [{kind, name, a, b}]: gauges (growth\n"
    "  per life) and mappings (private dirty per restart) that grew in A;\n"
    "  stopped means B is under 5% of A or absent (b null)\n";

/* ---- small helpers ----------------------------------------------------- */

/* Appends a zeroed element; returns it, or NULL when out of memory. */
static void* push(vec_t* v, size_t size) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? 2 * v->cap : 16;
    void* p = realloc(v->v, cap * size);
    if (p == NULL) return NULL;
    v->v = p;
    v->cap = cap;
  }
  void* slot = (char*)v->v + v->n++ * size;
  memset(slot, 0, size);
  return slot;
}

static int tally(vec_t* v, const char* name, double x) {
  tally_t* t = v->v;
  size_t i = 0;
  while (i < v->n && strcmp(t[i].name, name) != 0) i++;
  if (i == v->n) {
    char* copy = strdup(name);
    if (copy == NULL || (t = push(v, sizeof(*t))) == NULL) {
      free(copy);
      return -ENOMEM;
    }
    t->name = copy;
  } else {
    t += i;
  }
  t->sum += x;
  t->n++;
  return 0;
}

static double num(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char* str(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON* obj(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsObject(v) ? v : NULL;
}

/* Casting a NaN or huge double to int is undefined, so check first. */
static int to_pid(double v) {
  return v > 0 && v < INT_MAX ? (int)v : 0;
}

static void add_num(cJSON* o, const char* key, double v) {
  if (isfinite(v))
    cJSON_AddNumberToObject(o, key, v);
  else
    cJSON_AddNullToObject(o, key);
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* Sorts v in place; NAN when n is 0. */
static double median(double* v, size_t n) {
  if (n == 0) return NAN;
  qsort(v, n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* "2026-11-21T23:32:58.433Z" (fraction optional) to Unix seconds. */
static int parse_ts(const char* s, double* out) {
  struct tm tm;
  int n = 0;
  double frac = 0;
  memset(&tm, 0, sizeof(tm));
  if (strlen(s) >= 32 ||
      sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
             &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
    return -EINVAL;
  s += n;
  if (*s == '.') {
    char* end;
    frac = strtod(s, &end);
    s = end;
  }
  if (strcmp(s, "Z") != 0 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
      tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60 || frac < 0 || frac >= 1)
    return -EINVAL;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  *out = (double)timegm(&tm) + frac;
  return 0;
}

/* ---- loading ----------------------------------------------------------- */

static life_t* life_get(data_t* d, int pid) {
  life_t* l = d->lives.v;
  for (size_t i = d->lives.n; i-- > 0;)
    if (l[i].pid == pid) return &l[i];
  if ((l = push(&d->lives, sizeof(*l))) == NULL) return NULL;
  l->pid = pid;
  l->rate = NAN;
  return l;
}

/* Keeps a copy of src in *dst; a NULL src leaves it alone. */
static int keep(cJSON** dst, const cJSON* src) {
  if (src == NULL) return 0;
  cJSON* copy = cJSON_Duplicate(src, 1);
  if (copy == NULL) return -ENOMEM;
  cJSON_Delete(*dst);
  *dst = copy;
  return 0;
}

static void mem(const cJSON* o, double v[3]) {
  v[0] = num(o, "footprint");
  v[1] = num(o, "rss");
  v[2] = num(o, "heap");
}

static int take_sample(data_t* d, const cJSON* j, double t, int pid) {
  double fp = num(j, "footprint"), rss = num(j, "rss"), limit = num(j, "limit");
  const cJSON* g = obj(j, "gauges");
  if (!isfinite(fp) || !isfinite(rss)) return -EINVAL;
  point_t* p = push(&d->pts, sizeof(*p));
  life_t* l = p ? life_get(d, pid) : NULL;
  if (l == NULL) return -ENOMEM;
  *p = (point_t){t, fp, rss, pid};
  if (isfinite(limit)) d->limit = limit;
  if (g == NULL) return 0;
  /* Files may come in any order, so "first" and "last" go by time. */
  if (l->g_first == NULL || t < l->t_first) {
    if (keep(&l->g_first, g) < 0) return -ENOMEM;
    l->t_first = t;
  }
  if (l->g_last == NULL || t >= l->t_last) {
    if (keep(&l->g_last, g) < 0) return -ENOMEM;
    l->t_last = t;
  }
  return 0;
}

static int take_restart(data_t* d, const cJSON* j, double t, int dry) {
  const char* reason = str(j, "reason");
  const cJSON* before = obj(j, "before");
  const cJSON* after = obj(j, "after");
  const cJSON* st = obj(j, "state");
  const cJSON* ev = obj(j, "evidence");
  const cJSON* m;
  double limit = num(j, "limit");
  if (reason == NULL || !isfinite(num(before, "footprint")) ||
      !isfinite(num(j, "uptime_s")))
    return -EINVAL;
  restart_t* r = push(&d->rs, sizeof(*r));
  if (r == NULL) return -ENOMEM;
  r->t = t;
  r->dry = dry;
  r->uptime_s = num(j, "uptime_s");
  r->downtime_ms = num(j, "downtime_ms");
  r->old_pid = to_pid(num(j, "old_pid"));
  r->new_pid = dry ? 0 : to_pid(num(j, "new_pid"));
  r->state_bytes = num(st, "bytes");
  mem(before, r->before);
  mem(after, r->after);
  if (isfinite(limit)) d->limit = limit;
  d->dry += dry;
  d->not_helped += cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "helped"));
  if (keep(&r->g_before, obj(before, "gauges")) < 0 ||
      keep(&r->g_after, obj(after, "gauges")) < 0 ||
      tally(&d->reasons, reason, 1) < 0 ||
      (str(st, "outcome") && tally(&d->outcomes, str(st, "outcome"), 1) < 0) ||
      (str(ev, "classification") &&
       tally(&d->classes, str(ev, "classification"), 1) < 0))
    return -ENOMEM;
  cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(ev, "mappings")) {
    double pd = num(m, "private_dirty");
    if (str(m, "name") && isfinite(pd) && tally(&d->maps, str(m, "name"), pd))
      return -ENOMEM;
  }
  return 0;
}

/* One line.  Returns 0 (taken or skipped) or -ENOMEM. */
static int take_line(data_t* d, const char* line, size_t len) {
  const char* end = NULL;
  const char *ts, *event;
  double t, pid;
  int err = -EINVAL;
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                     line[len - 1] == ' ' || line[len - 1] == '\t'))
    len--;
  if (len == 0) return 0;
  d->lines++;
  /* With the length given, an embedded NUL or trailing junk leaves end
   * short of the line's end, and the line counts as malformed. */
  cJSON* j = cJSON_ParseWithLengthOpts(line, len, &end, 0);
  if (!cJSON_IsObject(j) || end != line + len) goto end;
  ts = str(j, "ts");
  event = str(j, "event");
  pid = num(j, "pid");
  if (ts == NULL || event == NULL || !isfinite(pid) ||
      !isfinite(num(j, "gen")) || parse_ts(ts, &t) < 0)
    goto end;
  if (strcmp(event, "sample") == 0)
    err = take_sample(d, j, t, to_pid(pid));
  else if (strcmp(event, "restart") == 0 || strcmp(event, "would-restart") == 0)
    err = take_restart(d, j, t, event[0] == 'w');
  else
    err = 0; /* start, exit, stop, giveup and unknown events: counted only */
  d->crashes += err == 0 && strcmp(event, "crash") == 0;
  d->purges += err == 0 && strcmp(event, "purge") == 0;
  if (err == 0 && (d->lines - d->skipped == 1 || t < d->t0)) {
    d->t0 = t;
    snprintf(d->t0s, sizeof(d->t0s), "%s", ts);
  }
  if (err == 0 && (d->lines - d->skipped == 1 || t > d->t1)) {
    d->t1 = t;
    snprintf(d->t1s, sizeof(d->t1s), "%s", ts);
  }
end:
  cJSON_Delete(j);
  if (err == -EINVAL) d->skipped++;
  return err == -ENOMEM ? err : 0;
}

/* Loads one file; messages name the file.  Returns 0 or -errno. */
static int load_file(data_t* d, const char* path) {
  char* line = NULL;
  size_t cap = 0;
  ssize_t n;
  int err = 0;
  FILE* f = fopen(path, "re");
  if (f == NULL) {
    err = -errno;
    fprintf(stderr, "memsup report: open %s: %s\n", path, strerror(-err));
    return err;
  }
  errno = 0;
  while ((n = getline(&line, &cap, f)) >= 0)
    if ((err = take_line(d, line, (size_t)n)) < 0) goto end;
  if (ferror(f)) {
    err = errno ? -errno : -EIO;
    fprintf(stderr, "memsup report: read %s: %s\n", path, strerror(-err));
  }
end:
  free(line);
  fclose(f);
  return err;
}

/* Loads a comma-separated list of files. */
static int load_list(data_t* d, const char* list) {
  char* copy = strdup(list);
  char* save = NULL;
  int err = copy ? 0 : -ENOMEM;
  for (char* p = copy ? strtok_r(copy, ",", &save) : NULL; p && err == 0;
       p = strtok_r(NULL, ",", &save))
    err = load_file(d, p);
  free(copy);
  return err;
}

static void data_free(data_t* d) {
  life_t* l = d->lives.v;
  restart_t* r = d->rs.v;
  vec_t* tallies[] = {&d->reasons, &d->outcomes, &d->classes, &d->maps};
  for (size_t i = 0; i < d->lives.n; i++) {
    cJSON_Delete(l[i].g_first);
    cJSON_Delete(l[i].g_last);
  }
  for (size_t i = 0; i < d->rs.n; i++) {
    cJSON_Delete(r[i].g_before);
    cJSON_Delete(r[i].g_after);
  }
  for (size_t k = 0; k < 4; k++) {
    for (size_t i = 0; i < tallies[k]->n; i++)
      free(((tally_t*)tallies[k]->v)[i].name);
    free(tallies[k]->v);
  }
  free(d->pts.v);
  free(d->lives.v);
  free(d->rs.v);
}

/* ---- figures ----------------------------------------------------------- */

static int by_time(const void* a, const void* b) {
  const restart_t *x = a, *y = b;
  return (x->t > y->t) - (x->t < y->t);
}

static int by_pid_time(const void* a, const void* b) {
  const point_t *x = a, *y = b;
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

/* The real restart that ended (ending) or started this pid's life. */
static const restart_t* life_restart(const data_t* d, int pid, int ending) {
  const restart_t* r = d->rs.v;
  for (size_t i = 0; i < d->rs.n; i++)
    if (!r[i].dry && (ending ? r[i].old_pid : r[i].new_pid) == pid)
      return &r[i];
  return NULL;
}

/* Fills every life's rate and tallies each gauge's growth over the life:
 * its value at the ending restart (or last sample) minus its first sample
 * value (or the starting restart's after, or the ending restart's after,
 * which is the value a fresh worker starts from). */
static int lives(data_t* d, vec_t* gauges) {
  const point_t* p = d->pts.v;
  const restart_t* r = d->rs.v;
  const cJSON* g;
  for (size_t i = 0; i < d->rs.n; i++)
    if (!r[i].dry && ((r[i].old_pid && !life_get(d, r[i].old_pid)) ||
                      (r[i].new_pid && !life_get(d, r[i].new_pid))))
      return -ENOMEM;
  for (size_t i = 0, j; i < d->pts.n; i = j) {
    for (j = i; j < d->pts.n && p[j].pid == p[i].pid;) j++;
    life_t* l = life_get(d, p[i].pid);
    l->samples = j - i;
    if (j - i >= 3) l->rate = slope(p + i, j - i);
  }
  life_t* l = d->lives.v;
  for (size_t i = 0; i < d->lives.n; i++) {
    const restart_t* e = l[i].pid ? life_restart(d, l[i].pid, 1) : NULL;
    const restart_t* s = l[i].pid ? life_restart(d, l[i].pid, 0) : NULL;
    if (!isfinite(l[i].rate) && e && e->uptime_s > 0) {
      double from = s && isfinite(s->after[0]) ? s->after[0] : 0;
      l[i].rate = (e->before[0] - from) / e->uptime_s * 60 / MIB;
    }
    const cJSON* last = e && e->g_before ? e->g_before : l[i].g_last;
    cJSON_ArrayForEach(g, last) {
      double first = num(l[i].g_first, g->string);
      if (!isfinite(first) && s) first = num(s->g_after, g->string);
      if (!isfinite(first) && e) first = num(e->g_after, g->string);
      if (cJSON_IsNumber(g) && isfinite(first) &&
          tally(gauges, g->string, g->valuedouble - first) < 0)
        return -ENOMEM;
    }
  }
  return 0;
}

static cJSON* tally_obj(const vec_t* v) {
  const tally_t* t = v->v;
  cJSON* o = cJSON_CreateObject();
  for (size_t i = 0; i < v->n; i++)
    cJSON_AddNumberToObject(o, t[i].name, t[i].n);
  return o;
}

/* Sorted by sum, at most top items (0: all). */
static cJSON* tally_list(vec_t* v, const char* sum_key, const char* n_key,
                         const char* mean_key, size_t top) {
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

/* All figures as one object (the --json output); top limits the mapping
 * and gauge lists (0: all).  Sorts d's arrays.  NULL when out of memory. */
static cJSON* summarize(data_t* d, char** files, int nfiles, size_t top) {
  vec_t gauges = {0};
  restart_t* r = d->rs.v;
  double hours = (d->t1 - d->t0) / 3600, sum = 0, max = NAN;
  size_t n = 0;
  cJSON *s = NULL, *o, *a;
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

  cJSON_AddItemToObject(s, "classification", tally_obj(&d->classes));
  cJSON_AddItemToObject(
      s, "mappings",
      tally_list(&d->maps, "private_dirty", "restarts", NULL, top));
  cJSON_AddItemToObject(
      s, "gauges", tally_list(&gauges, "growth", "lives", "per_life", top));
end:
  for (size_t i = 0; i < gauges.n; i++) free(((tally_t*)gauges.v)[i].name);
  free(gauges.v);
  free(buf);
  return s;
}

/* ---- text output ------------------------------------------------------- */

/* The item at a dotted path such as "restarts.per_hour". */
static const cJSON* at(const cJSON* o, const char* path) {
  char key[64];
  while (o && *path) {
    size_t n = strcspn(path, ".");
    snprintf(key, sizeof(key), "%.*s", (int)n, path);
    o = cJSON_GetObjectItemCaseSensitive(o, key);
    path += n + (path[n] == '.');
  }
  return o;
}

static double jnum(const cJSON* o, const char* path) {
  const cJSON* v = at(o, path);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char* fmt(char buf[32], const char* f, double v) {
  if (!isfinite(v)) return "n/a";
  snprintf(buf, 32, f, v);
  return buf;
}

static const char* size(char buf[32], double v) {
  return isfinite(v) ? ms_fmt_bytes(buf, v > 0 ? (unsigned long long)v : 0)
                     : "n/a";
}

/* "growth 2, allocator-retention 1" or "none", then end. */
static void print_counts(FILE* f, const cJSON* o, const char* end) {
  const cJSON* c;
  const char* sep = "";
  cJSON_ArrayForEach(c, o) {
    fprintf(f, "%s%s %g", sep, c->string, c->valuedouble);
    sep = ", ";
  }
  fprintf(f, "%s%s", *sep ? "" : "none", end);
}

static void print_text(FILE* f, const cJSON* s) {
  char a[32], b[32], c[32];
  const cJSON* e;
  int skipped = (int)jnum(s, "skipped");
  fprintf(f, "memsup report: %g lines", jnum(s, "lines"));
  if (skipped)
    fprintf(f, " (skipped %d malformed line%s)", skipped,
            skipped == 1 ? "" : "s");
  double h = jnum(s, "period.hours");
  int unit = h < 2.0 / 60 ? 0 : h < 2 ? 1 : 2; /* s, min or h */
  if (cJSON_IsString(at(s, "period.start")))
    fprintf(f, "\nperiod            %s to %s (%.1f %s, first to last line)\n",
            at(s, "period.start")->valuestring,
            at(s, "period.end")->valuestring,
            unit == 0   ? h * 3600
            : unit == 1 ? h * 60
                        : h,
            unit == 0   ? "s"
            : unit == 1 ? "min"
                        : "h");
  else
    fputs("\nperiod            none (no valid lines)\n", f);
  fprintf(f, "restarts          %g (", jnum(s, "restarts.total"));
  print_counts(f, at(s, "restarts.by_reason"), ")\n");
  fprintf(f, "                  crashes %g, purges %g, dry-run %g\n",
          jnum(s, "restarts.crashes"), jnum(s, "restarts.purges"),
          jnum(s, "restarts.dry_run"));
  fprintf(f, "restart rate      %s per hour, %s per day (over the period)\n",
          fmt(a, "%.2f", jnum(s, "restarts.per_hour")),
          fmt(b, "%.2f", jnum(s, "restarts.per_day")));
  fprintf(f, "between restarts  mean %s s, median %s s\n",
          fmt(a, "%.1f", jnum(s, "interval_s.mean")),
          fmt(b, "%.1f", jnum(s, "interval_s.median")));
  fprintf(f, "growth per life   median %s MiB/min over %d lives\n",
          fmt(a, "%.2f", jnum(s, "growth_mib_per_min.median")),
          cJSON_GetArraySize(at(s, "growth_mib_per_min.lives")));
  static const char* const fields[] = {"footprint", "rss", "heap"};
  for (int i = 0; i < 3; i++) {
    char bk[32], ak[32];
    snprintf(bk, sizeof(bk), "before.%s", fields[i]);
    snprintf(ak, sizeof(ak), "after.%s", fields[i]);
    if (i < 2 || isfinite(jnum(s, bk)))
      fprintf(f, "%-17s before %s, after %s (medians at restart)\n", fields[i],
              size(a, jnum(s, bk)), size(b, jnum(s, ak)));
  }
  fprintf(f, "state             median %s; outcomes: ",
          size(a, jnum(s, "state.median_bytes")));
  print_counts(f, at(s, "state.outcomes"), "\n");
  fprintf(f, "downtime          median %s ms, max %s ms\n",
          fmt(a, "%.2f", jnum(s, "downtime_ms.median")),
          fmt(b, "%.2f", jnum(s, "downtime_ms.max")));
  fputs("classification    ", f);
  print_counts(f, at(s, "classification"), "\n");
  fputs("mappings that grew most (private dirty summed over restarts):\n", f);
  cJSON_ArrayForEach(e, at(s, "mappings"))
      fprintf(f, "  %-30s %s in %g restarts\n",
              *str(e, "name") ? str(e, "name") : "(anonymous: allocator arenas, mmap)",
              size(a, num(e, "private_dirty")), num(e, "restarts"));
  fputs("gauges that grew most (first value of a life to its restart):\n", f);
  cJSON_ArrayForEach(e, at(s, "gauges")) fprintf(
      f, "  %-30s %+.0f over %g lives (%s per life)\n", str(e, "name"),
      num(e, "growth"), num(e, "lives"), fmt(c, "%+.1f", num(e, "per_life")));
  fprintf(f, "restarts that did not help: %g\n",
          jnum(s, "restarts.not_helped"));
}

/* ---- SVG --------------------------------------------------------------- */

#define SVG_W 800
#define SVG_H 400
#define PAD_L 70
#define PAD_R 20
#define PAD_T 50
#define PAD_B 50

typedef struct {
  FILE* f;
  double t0, t1, top; /* x range in seconds, y range 0..top MiB */
} plot_t;

static double px(const plot_t* p, double t) {
  return PAD_L + (t - p->t0) / (p->t1 - p->t0) * (SVG_W - PAD_L - PAD_R);
}

static double py(const plot_t* p, double bytes) {
  return SVG_H - PAD_B - bytes / MIB / p->top * (SVG_H - PAD_T - PAD_B);
}

/* Text for XML.  Bytes outside printable ASCII become '?': control bytes
 * are not allowed in XML 1.0 and a file name need not be valid UTF-8. */
static void xml_puts(FILE* f, const char* s) {
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '&')
      fputs("&amp;", f);
    else if (ch == '<')
      fputs("&lt;", f);
    else if (ch == '>')
      fputs("&gt;", f);
    else if (ch == '"')
      fputs("&quot;", f);
    else
      fputc(ch >= 0x20 && ch < 0x7f ? ch : '?', f);
  }
}

/* 1, 2 or 5 times a power of ten, giving about five ticks over range. */
static double nice_step(double range) {
  double raw = range / 5, p = 1;
  while (p * 10 <= raw) p *= 10;
  while (p > raw) p /= 10;
  return raw <= p ? p : raw <= 2 * p ? 2 * p : raw <= 5 * p ? 5 * p : 10 * p;
}

/* Footprint (col 0) or rss (col 1): one polyline per worker life from the
 * samples, or, with no samples, one through the restarts' before and after
 * values. */
static void series(const plot_t* p, const data_t* d, int col,
                   const char* attrs) {
  const point_t* pt = d->pts.v;
  const restart_t* r = d->rs.v;
  const char* cls = col ? "rss" : "footprint";
  if (d->pts.n == 0) {
    fprintf(p->f, "<polyline class=\"%s\" %s points=\"", cls, attrs);
    for (size_t i = 0; i < d->rs.n; i++) {
      if (isfinite(r[i].before[col]))
        fprintf(p->f, "%.1f,%.1f ", px(p, r[i].t), py(p, r[i].before[col]));
      if (isfinite(r[i].after[col]))
        fprintf(p->f, "%.1f,%.1f ", px(p, r[i].t), py(p, r[i].after[col]));
    }
    fputs("\"/>\n", p->f);
  }
  for (size_t i = 0, j = 0; i < d->pts.n; i = j) {
    fprintf(p->f, "<polyline class=\"%s\" %s points=\"", cls, attrs);
    for (j = i; j < d->pts.n && pt[j].pid == pt[i].pid; j++)
      fprintf(p->f, "%.1f,%.1f ", px(p, pt[j].t),
              py(p, col ? pt[j].rss : pt[j].fp));
    fputs("\"/>\n", p->f);
  }
}

static double max_mib(const data_t* d) {
  const point_t* pt = d->pts.v;
  const restart_t* r = d->rs.v;
  double m = d->limit;
  for (size_t i = 0; i < d->pts.n; i++) {
    if (pt[i].fp > m) m = pt[i].fp;
    if (pt[i].rss > m) m = pt[i].rss;
  }
  for (size_t i = 0; i < d->rs.n; i++)
    for (int k = 0; k < 2; k++) {
      if (r[i].before[k] > m) m = r[i].before[k];
      if (r[i].after[k] > m) m = r[i].after[k];
    }
  return m > 0 ? m / MIB : 1;
}

/* Draws d (summarize() has sorted it) into path.  Returns 0 or -errno. */
static int write_svg(const char* path, const data_t* d, char** files,
                     int nfiles) {
  plot_t p = {NULL, d->t0, d->t1 > d->t0 ? d->t1 : d->t0 + 1, 0};
  const restart_t* r = d->rs.v;
  double step = nice_step(max_mib(d) * 1.05);
  char label[32];
  int err = 0;
  while (p.top < max_mib(d) * 1.05) p.top += step;
  if ((p.f = fopen(path, "we")) == NULL) {
    err = -errno;
    fprintf(stderr, "memsup report: open %s: %s\n", path, strerror(-err));
    return err;
  }
  fprintf(
      p.f,
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n"
      "<title>memsup report: ",
      SVG_W, SVG_H, SVG_W, SVG_H);
  for (int i = 0; i < nfiles; i++) {
    xml_puts(p.f, files[i]);
    fputs(i + 1 < nfiles ? ", " : "", p.f);
  }
  fprintf(p.f,
          "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
          "<text x=\"%d\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">"
          "memsup: footprint (thick) and rss (thin), ",
          SVG_W / 2);
  xml_puts(p.f, d->t0s);
  fputs(" to ", p.f);
  xml_puts(p.f, d->t1s);
  fprintf(p.f,
          "</text>\n<g stroke=\"black\">"
          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/></g>\n",
          PAD_L, PAD_T, PAD_L, SVG_H - PAD_B, PAD_L, SVG_H - PAD_B,
          SVG_W - PAD_R, SVG_H - PAD_B);
  for (double v = 0; v <= p.top + step / 2; v += step)
    fprintf(p.f,
            "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g MiB</text>\n",
            PAD_L - 4, py(&p, v * MIB) + 4, v);
  for (int k = 0; k <= 4; k++) {
    double t = p.t0 + (p.t1 - p.t0) * k / 4;
    time_t sec = (time_t)t;
    struct tm tm;
    gmtime_r(&sec, &tm);
    strftime(label, sizeof(label),
             p.t1 - p.t0 > 2 * 86400 ? "%m-%d %H:%M" : "%H:%M:%S", &tm);
    fprintf(p.f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
            px(&p, t), SVG_H - PAD_B + 16, label);
  }
  fprintf(p.f,
          "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time (UTC)</text>\n",
          SVG_W / 2, SVG_H - 10);
  if (d->limit > 0)
    fprintf(p.f,
            "<line class=\"limit\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
            "stroke=\"#c00\" stroke-dasharray=\"6 4\"/>\n"
            "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#c00\">"
            "limit %s</text>\n",
            PAD_L, py(&p, d->limit), SVG_W - PAD_R, py(&p, d->limit),
            SVG_W - PAD_R, py(&p, d->limit) - 4, ms_fmt_bytes(label, d->limit));
  for (size_t i = 0; i < d->rs.n; i++)
    fprintf(
        p.f,
        "<line class=\"restart\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
        "stroke=\"#e80\"/>\n",
        px(&p, r[i].t), PAD_T, px(&p, r[i].t), SVG_H - PAD_B);
  series(&p, d, 1, "fill=\"none\" stroke=\"#999\" stroke-width=\"1\"");
  series(&p, d, 0, "fill=\"none\" stroke=\"#06c\" stroke-width=\"2\"");
  fputs("</svg>\n", p.f);
  if (ferror(p.f)) err = -EIO;
  if (fclose(p.f) != 0 && err == 0) err = -errno;
  if (err < 0)
    fprintf(stderr, "memsup report: write %s: %s\n", path, strerror(-err));
  return err;
}

/* ---- compare ----------------------------------------------------------- */

/* Adds to out the items of a's list key (value mean_key) that grew in A,
 * each to "stopped_growing" or "still_growing" by B's value. */
static void compare_list(cJSON* out, const cJSON* a, const cJSON* b,
                         const char* key, const char* kind,
                         const char* mean_key) {
  const cJSON* e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(a, key)) {
    double va = num(e, mean_key), vb = NAN;
    const cJSON* f;
    if (!(va > 0)) continue;
    cJSON_ArrayForEach(
        f, cJSON_GetObjectItemCaseSensitive(
               b, key)) if (strcmp(str(f, "name"), str(e, "name")) == 0) vb =
        num(f, mean_key);
    /* "About zero" is relative: under 5% of what A grew. */
    int stopped = !isfinite(vb) || vb <= 0.05 * va;
    cJSON* o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(o, "name", str(e, "name"));
    add_num(o, "a", va);
    add_num(o, "b", vb);
    cJSON_AddItemToArray(
        cJSON_GetObjectItemCaseSensitive(
            out, stopped ? "stopped_growing" : "still_growing"),
        o);
  }
}

static cJSON* side(const cJSON* s, const char* list) {
  cJSON* o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "files", list);
  add_num(o, "growth_mib_per_min", jnum(s, "growth_mib_per_min.median"));
  add_num(o, "restarts_per_hour", jnum(s, "restarts.per_hour"));
  add_num(o, "restarts", jnum(s, "restarts.total"));
  add_num(o, "hours", jnum(s, "period.hours"));
  return o;
}

static void print_compare(FILE* f, const cJSON* c) {
  static const char* const lists[] = {"stopped_growing", "still_growing"};
  char a[32], b[32];
  const cJSON* e;
  fprintf(f, "%-26s %-12s %s\n", "", "A", "B");
  fprintf(f, "%-26s %-12s %s\n", "growth (MiB/min, median)",
          fmt(a, "%.2f", jnum(c, "a.growth_mib_per_min")),
          fmt(b, "%.2f", jnum(c, "b.growth_mib_per_min")));
  fprintf(f, "%-26s %-12s %s\n", "restarts per hour",
          fmt(a, "%.2f", jnum(c, "a.restarts_per_hour")),
          fmt(b, "%.2f", jnum(c, "b.restarts_per_hour")));
  for (int i = 0; i < 2; i++) {
    fputs(
        i ? "still growing in B:\n" : "stopped growing (grew in A, ~0 in B):\n",
        f);
    cJSON_ArrayForEach(e, at(c, lists[i])) {
      int gauge = strcmp(str(e, "kind"), "gauge") == 0;
      const char* unit = gauge ? "per life" : "private dirty per restart";
      if (gauge)
        fprintf(
            f, "  gauge %s: %+g %s in A, %s in B\n", str(e, "name"),
            num(e, "a"), unit,
            isfinite(num(e, "b")) ? fmt(b, "%+g", num(e, "b")) : "not seen");
      else
        fprintf(f, "  mapping %s: %s %s in A, %s in B\n", str(e, "name"),
                size(a, num(e, "a")), unit,
                isfinite(num(e, "b")) ? size(b, num(e, "b")) : "not seen");
    }
    if (cJSON_GetArraySize(at(c, lists[i])) == 0) fputs("  none\n", f);
  }
}

/* ---- command ----------------------------------------------------------- */

static int usage(const char* why) {
  fprintf(stderr,
          "memsup report: %s\n"
          "usage: memsup report [--json] [--svg FILE] LOG [LOG...]\n"
          "       memsup report [--json] --compare A B\n"
          "       memsup report --help\n",
          why);
  return EXIT_USAGE;
}

/* Prints o as JSON or text; returns an exit code. */
static int print(const cJSON* o, int json, void (*text)(FILE*, const cJSON*)) {
  if (!json) {
    text(stdout, o);
  } else {
    char* out = cJSON_Print(o);
    if (out == NULL) return EXIT_IO;
    puts(out);
    cJSON_free(out);
  }
  return fflush(stdout) == 0 ? 0 : EXIT_IO;
}

static int compare(char** ab, int json) {
  data_t d[2];
  cJSON* s[2] = {NULL, NULL};
  cJSON* c = NULL;
  int rc = EXIT_IO;
  memset(d, 0, sizeof(d));
  for (int i = 0; i < 2; i++) {
    if (load_list(&d[i], ab[i]) < 0) goto end;
    if ((s[i] = summarize(&d[i], &ab[i], 1, 0)) == NULL) {
      fputs("memsup report: out of memory\n", stderr);
      goto end;
    }
  }
  c = cJSON_CreateObject();
  cJSON_AddItemToObject(c, "a", side(s[0], ab[0]));
  cJSON_AddItemToObject(c, "b", side(s[1], ab[1]));
  cJSON_AddItemToObject(c, "stopped_growing", cJSON_CreateArray());
  cJSON_AddItemToObject(c, "still_growing", cJSON_CreateArray());
  compare_list(c, s[0], s[1], "gauges", "gauge", "per_life");
  /* Mappings are sizes at restart; per restart keeps A and B comparable
   * when one side restarted more often. */
  for (int i = 0; i < 2; i++) {
    cJSON* e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(s[i], "mappings"))
        add_num(e, "per_restart", num(e, "private_dirty") / num(e, "restarts"));
  }
  compare_list(c, s[0], s[1], "mappings", "mapping", "per_restart");
  rc = print(c, json, print_compare);
end:
  for (int i = 0; i < 2; i++) {
    cJSON_Delete(s[i]);
    data_free(&d[i]);
  }
  cJSON_Delete(c);
  return rc;
}

int ms_report_main(int argc, char** argv) {
  const char* svg = NULL;
  char* ab[2] = {NULL, NULL};
  int json = 0, nfiles = 0, opts = 1, rc = EXIT_IO;
  data_t d;
  cJSON* s = NULL;
  char** files = calloc((size_t)argc + 1, sizeof(*files));
  memset(&d, 0, sizeof(d));
  if (files == NULL) return EXIT_IO;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (!opts || a[0] != '-' || a[1] == '\0') {
      files[nfiles++] = argv[i];
    } else if (strcmp(a, "--") == 0) {
      opts = 0;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage_text, stdout);
      rc = 0;
      goto end;
    } else if (strcmp(a, "--json") == 0) {
      json = 1;
    } else if (strcmp(a, "--svg") == 0 && i + 1 < argc) {
      svg = argv[++i];
    } else if (strcmp(a, "--compare") == 0 && i + 2 < argc) {
      ab[0] = argv[++i];
      ab[1] = argv[++i];
    } else {
      char why[128];
      snprintf(why, sizeof(why), "%s: %s", a,
               strcmp(a, "--svg") == 0       ? "needs a FILE"
               : strcmp(a, "--compare") == 0 ? "needs two logs, A and B"
                                             : "unknown option");
      rc = usage(why);
      goto end;
    }
  }
  if (ab[0] && (nfiles || svg)) {
    rc = usage("--compare takes no other logs and no --svg");
    goto end;
  }
  if (ab[0]) {
    rc = compare(ab, json);
    goto end;
  }
  if (nfiles == 0) {
    rc = usage("no log files given");
    goto end;
  }
  for (int i = 0; i < nfiles; i++) {
    int err = load_file(&d, files[i]);
    if (err == -ENOMEM) fputs("memsup report: out of memory\n", stderr);
    if (err < 0) goto end;
  }
  if ((s = summarize(&d, files, nfiles, TOP)) == NULL) {
    fputs("memsup report: out of memory\n", stderr);
    goto end;
  }
  if (svg && write_svg(svg, &d, files, nfiles) < 0) goto end;
  rc = print(s, json, print_text);
end:
  cJSON_Delete(s);
  data_free(&d);
  free(files);
  return rc;
}
