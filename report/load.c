/* load.c: memsup's JSON-lines logs (--log and --sample-log lines, in any
 * order or mix) into report's records.  A line that is not a whole JSON
 * object with ts, event, pid and gen, or whose event lacks what report
 * needs, is skipped and counted; a byte figure outside what memsup can
 * write is clamped and counted.  Lookups go through hash tables, so
 * loading is linear in the size of the logs.
 */
#include <errno.h>
#include <limits.h>
#include <math.h> /* NAN and isfinite() only: memsup does not link libm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "logkeys.h"

/* ---- helpers ------------------------------------------------------------- */

void* ms_report_push(vec_t* v, size_t size) {
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

int ms_report_tally(tallies_t* ts, const char* name, double x) {
  size_t* at = ms_table_get_str(&ts->byname, name);
  tally_t* t;
  if (at) {
    t = (tally_t*)ts->items.v + *at;
  } else {
    char* copy = strdup(name);
    size_t i = ts->items.n;
    if (copy == NULL || (t = ms_report_push(&ts->items, sizeof(*t))) == NULL) {
      free(copy);
      return -ENOMEM;
    }
    t->name = copy;
    /* The table points at the copy, which lives as long as the tally. */
    if (ms_table_put_str(&ts->byname, copy, i) < 0) return -ENOMEM;
  }
  t->sum += x;
  t->n++;
  return 0;
}

void ms_report_tallies_free(tallies_t* ts) {
  for (size_t i = 0; i < ts->items.n; i++)
    free(((tally_t*)ts->items.v)[i].name);
  free(ts->items.v);
  ms_table_free(&ts->byname);
  memset(ts, 0, sizeof(*ts));
}

double ms_report_num(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

const char* ms_report_str(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

const cJSON* ms_report_obj(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsObject(v) ? v : NULL;
}

double ms_report_clamp_bytes(double v, int* clamped) {
  if (v < 0) {
    (*clamped)++;
    return 0;
  }
  if (v > MS_REPORT_BYTES_MAX) {
    (*clamped)++;
    return MS_REPORT_BYTES_MAX;
  }
  return v; /* in range, or NAN */
}

void ms_report_add_num(cJSON* o, const char* key, double v) {
  if (isfinite(v))
    cJSON_AddNumberToObject(o, key, v);
  else
    cJSON_AddNullToObject(o, key);
}

#define num ms_report_num
#define str ms_report_str
#define obj ms_report_obj

/* A byte figure of o, clamped and counted in d. */
static double bytes(data_t* d, const cJSON* o, const char* key) {
  return ms_report_clamp_bytes(num(o, key), &d->clamped);
}

/* Casting a NaN or huge double to int is undefined, so check first. */
static int to_pid(double v) {
  return v > 0 && v < INT_MAX ? (int)v : 0;
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

/* ---- records ------------------------------------------------------------- */

life_t* ms_report_life(data_t* d, int slot, int pid) {
  int64_t key = ms_report_life_key(slot, pid);
  size_t* at = ms_table_get_num(&d->life_by_pid, key);
  if (at) return (life_t*)d->lives.v + *at;
  size_t i = d->lives.n;
  life_t* l = ms_report_push(&d->lives, sizeof(*l));
  if (l == NULL) return NULL;
  if (ms_table_put_num(&d->life_by_pid, key, i) < 0) {
    d->lives.n--;
    return NULL;
  }
  l->pid = pid;
  l->slot = slot;
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

/* Adds each numeric gauge of g paired with footprint fp to its r sums. */
static int correlate(data_t* d, const cJSON* g, double fp) {
  const cJSON* e;
  if (!isfinite(fp) || g == NULL) return 0;
  d->corr_objs++;
  cJSON_ArrayForEach(e, g) {
    if (!cJSON_IsNumber(e) || e->string == NULL) continue;
    size_t* at = ms_table_get_str(&d->corr_byname, e->string);
    corr_t* c;
    if (at) {
      c = (corr_t*)d->corr.v + *at;
    } else {
      char* copy = strdup(e->string);
      size_t i = d->corr.n;
      if (copy == NULL || (c = ms_report_push(&d->corr, sizeof(*c))) == NULL) {
        free(copy);
        return -ENOMEM;
      }
      c->name = copy;
      c->x0 = e->valuedouble;
      c->y0 = fp / MIB;
      if (ms_table_put_str(&d->corr_byname, copy, i) < 0) return -ENOMEM;
    }
    if (c->stamp == d->corr_objs) continue;
    c->stamp = d->corr_objs;
    double x = e->valuedouble - c->x0, y = fp / MIB - c->y0;
    c->n++;
    c->sx += x;
    c->sy += y;
    c->sxx += x * x;
    c->syy += y * y;
    c->sxy += x * y;
  }
  return 0;
}

static void mem(data_t* d, const cJSON* o, double v[3]) {
  v[0] = bytes(d, o, MS_K_FOOTPRINT);
  v[1] = bytes(d, o, MS_K_RSS);
  v[2] = bytes(d, o, MS_K_HEAP);
}

static int take_sample(data_t* d, const cJSON* j, double t, int pid, int slot) {
  double fp = num(j, MS_K_FOOTPRINT), rss = num(j, MS_K_RSS);
  const cJSON* g = obj(j, MS_K_GAUGES);
  if (!isfinite(fp) || !isfinite(rss)) return -EINVAL;
  double limit = bytes(d, j, MS_K_LIMIT);
  fp = ms_report_clamp_bytes(fp, &d->clamped);
  rss = ms_report_clamp_bytes(rss, &d->clamped);
  point_t* p = ms_report_push(&d->pts, sizeof(*p));
  life_t* l = p ? ms_report_life(d, slot, pid) : NULL;
  if (l == NULL) return -ENOMEM;
  *p = (point_t){t, fp, rss, pid, slot};
  if (isfinite(limit)) d->limit = limit;
  if (g == NULL) return 0;
  if (correlate(d, g, fp) < 0) return -ENOMEM;
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

/* A row of evidence.grew: how much the region's footprint grew over the
 * life.  Read leniently (the row's writer may name the figure "growth" or
 * "grew", or give "footprint" with "footprint_first"); NAN if none. */
static double grew_bytes(data_t* d, const cJSON* m) {
  double v = num(m, MS_K_GROWTH);
  if (!isfinite(v)) v = num(m, "grew");
  if (!isfinite(v) && isfinite(num(m, MS_K_FOOTPRINT)) &&
      isfinite(num(m, "footprint_first")))
    v = num(m, MS_K_FOOTPRINT) - num(m, "footprint_first");
  /* Growth may be negative (a region that shrank): clamp only the top. */
  if (v > MS_REPORT_BYTES_MAX) {
    d->clamped++;
    v = MS_REPORT_BYTES_MAX;
  }
  return v;
}

/* How long a restart kept its slot down for memory (docs/restart-log.md,
 * "Down for memory"): the pool's own figure (up_ms) when the line has it,
 * else to the new worker's ready (downtime_ms), else (no SDK, or no new
 * worker) to the new worker's spawn or the old one's exit: a lower bound,
 * as memsup waits --handshake-timeout after a spawn without the SDK. */
static void down(restart_t* r, const cJSON* j) {
  double up = num(j, MS_K_UP_MS), ready = num(j, MS_K_DOWNTIME_MS);
  double gone = num(j, MS_K_GONE_MS), spawn = num(j, MS_K_SPAWN_MS);
  r->down_how = isfinite(up) && up >= 0         ? 0
                : isfinite(ready) && ready >= 0 ? 1
                                                : 2;
  double ms = r->down_how == 0 ? up : r->down_how == 1 ? ready : 0;
  if (r->down_how == 2 && isfinite(gone) && gone >= 0) {
    ms = gone;
    if (r->new_pid && isfinite(spawn) && spawn >= 0) ms += spawn;
  }
  /* A figure no restart can have (a day) would make one restart overlap
   * every other: it is treated as unknown. */
  if (!(ms <= 86400e3)) {
    ms = 0;
    r->down_how = 2;
  }
  r->down_s = ms / 1e3;
}

static int take_restart(data_t* d, const cJSON* j, double t, int dry,
                        int slot) {
  const char* reason = str(j, MS_K_REASON);
  const cJSON* before = obj(j, MS_K_BEFORE);
  const cJSON* after = obj(j, MS_K_AFTER);
  const cJSON* st = obj(j, MS_K_STATE);
  const cJSON* ev = obj(j, MS_K_EVIDENCE);
  const cJSON* m;
  if (reason == NULL || !isfinite(num(before, MS_K_FOOTPRINT)) ||
      !isfinite(num(j, MS_K_UPTIME_S)))
    return -EINVAL;
  restart_t* r = ms_report_push(&d->rs, sizeof(*r));
  if (r == NULL) return -ENOMEM;
  double limit = bytes(d, j, MS_K_LIMIT);
  r->t = t;
  r->decided = num(j, MS_K_DECIDED_UNIX_S);
  /* The stop began at most a few seconds before the line: a decision time
   * far from it is not memsup's and would draw the life elsewhere. */
  if (!(r->decided <= t && r->decided > t - 600)) r->decided = t;
  r->dry = dry;
  r->uptime_s = num(j, MS_K_UPTIME_S);
  r->downtime_ms = num(j, MS_K_DOWNTIME_MS);
  r->old_pid = to_pid(num(j, MS_K_OLD_PID));
  r->new_pid = dry ? 0 : to_pid(num(j, MS_K_NEW_PID));
  r->slot = slot;
  r->early = strcmp(reason, MS_REASON_EARLY) == 0;
  r->ceiling = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, MS_K_CEILING));
  r->waited_s = num(j, MS_K_WAITED_S);
  if (!(r->waited_s >= 0 && r->waited_s <= 86400 * 365.0)) r->waited_s = NAN;
  down(r, j);
  r->state_bytes = bytes(d, st, MS_K_BYTES);
  mem(d, before, r->before);
  mem(d, after, r->after);
  if (isfinite(limit)) d->limit = limit;
  d->dry += dry;
  d->not_helped +=
      cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, MS_K_HELPED));
  const cJSON* prof = obj(j, MS_K_PROF);
  if ((str(prof, MS_K_PROF_START) &&
       (r->prof_start = strdup(str(prof, MS_K_PROF_START))) == NULL) ||
      (str(prof, MS_K_PROF_END) &&
       (r->prof_end = strdup(str(prof, MS_K_PROF_END))) == NULL))
    return -ENOMEM;
  if (keep(&r->g_before, obj(before, MS_K_GAUGES)) < 0 ||
      keep(&r->g_after, obj(after, MS_K_GAUGES)) < 0 ||
      ms_report_tally(&d->reasons, reason, 1) < 0 ||
      (str(st, MS_K_OUTCOME) &&
       ms_report_tally(&d->outcomes, str(st, MS_K_OUTCOME), 1) < 0) ||
      (str(ev, MS_K_CLASSIFICATION) &&
       ms_report_tally(&d->classes, str(ev, MS_K_CLASSIFICATION), 1) < 0))
    return -ENOMEM;
  if (correlate(d, obj(before, MS_K_GAUGES), r->before[0]) < 0 ||
      correlate(d, obj(after, MS_K_GAUGES), r->after[0]) < 0)
    return -ENOMEM;
  cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(ev, MS_K_MAPPINGS)) {
    double pd = bytes(d, m, MS_K_PRIVATE_DIRTY);
    const char* cls = str(m, MS_K_CLASS);
    /* A file row's private dirty pages are its relocations and written
     * data: fixed per process, the same before and after a fix, so they
     * are noise in "what grew" and in --compare. */
    if (cls && strcmp(cls, "file") == 0) continue;
    if (str(m, MS_K_NAME) && isfinite(pd) &&
        ms_report_tally(&d->maps, str(m, MS_K_NAME), pd) < 0)
      return -ENOMEM;
  }
  cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(ev, MS_K_GREW)) {
    double g = grew_bytes(d, m);
    if (str(m, MS_K_NAME) && isfinite(g) &&
        ms_report_tally(&d->grew, str(m, MS_K_NAME), g) < 0)
      return -ENOMEM;
  }
  cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(ev, MS_K_PROCESSES)) {
    double fp = bytes(d, m, MS_K_FOOTPRINT);
    const char* cmd = str(m, MS_K_COMMAND);
    if (cmd && isfinite(fp) && ms_report_tally(&d->procs, cmd, fp) < 0)
      return -ENOMEM;
  }
  return 0;
}

int ms_report_load_line(data_t* d, const char* line, size_t len) {
  const char* end = NULL;
  const char *ts, *event;
  double t, pid;
  int err = -EINVAL, clamped = d->clamped, slot = -1;
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                     line[len - 1] == ' ' || line[len - 1] == '\t'))
    len--;
  if (len == 0) return 0;
  d->lines++;
  /* With the length given, an embedded NUL or trailing junk leaves end
   * short of the line's end, and the line counts as malformed. */
  cJSON* j = cJSON_ParseWithLengthOpts(line, len, &end, 0);
  if (!cJSON_IsObject(j) || end != line + len) goto end;
  ts = str(j, MS_K_TS);
  event = str(j, MS_K_EVENT);
  pid = num(j, MS_K_PID);
  if (ts == NULL || event == NULL || !isfinite(pid) ||
      !isfinite(num(j, MS_K_GEN)) || parse_ts(ts, &t) < 0)
    goto end;
  /* A pool's lines name their slot; one that names none that memsup can
   * have written is malformed (a slot of 1e9 would size every table). */
  const cJSON* sv = cJSON_GetObjectItemCaseSensitive(j, MS_K_SLOT);
  if (sv) {
    double k = cJSON_IsNumber(sv) ? sv->valuedouble : -1;
    if (!(k >= 0 && k < MS_REPORT_SLOTS_MAX) || k != (double)(int)k) goto end;
    slot = (int)k;
  }
  if (strcmp(event, MS_LOGEV_SAMPLE) == 0)
    err = take_sample(d, j, t, to_pid(pid), slot);
  else if (strcmp(event, MS_LOGEV_RESTART) == 0)
    err = take_restart(d, j, t, 0, slot);
  else if (strcmp(event, MS_LOGEV_WOULD_RESTART) == 0)
    err = take_restart(d, j, t, 1, slot);
  else
    err = 0; /* start, exit, stop, giveup and unknown events: counted only */
  int kind = strcmp(event, MS_LOGEV_CRASH) == 0   ? MS_MARK_CRASH
             : strcmp(event, MS_LOGEV_PURGE) == 0 ? MS_MARK_PURGE
             : strcmp(event, MS_LOGEV_WAIT) == 0  ? MS_MARK_WAIT
                                                  : -1;
  if (err == 0 && kind >= 0) {
    mark_t* mk = ms_report_push(&d->marks, sizeof(*mk));
    if (mk == NULL)
      err = -ENOMEM;
    else
      *mk = (mark_t){t, kind, slot};
    d->crashes += kind == MS_MARK_CRASH;
    d->purges += kind == MS_MARK_PURGE;
    d->waits += kind == MS_MARK_WAIT;
  }
  if (err == 0 && slot >= d->nslots) d->nslots = slot + 1;
  if (err == 0 && slot < 0) d->unslotted++;
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
  /* A skipped line's values are not counted as clamped: none was used. */
  if (err == -EINVAL) {
    d->skipped++;
    d->clamped = clamped;
  }
  return err == -ENOMEM ? err : 0;
}

int ms_report_load_stream(data_t* d, FILE* f, const char* name) {
  char* line = NULL;
  size_t cap = 0;
  ssize_t n;
  int err = 0;
  errno = 0;
  while ((n = getline(&line, &cap, f)) >= 0)
    if ((err = ms_report_load_line(d, line, (size_t)n)) < 0) goto end;
  if (ferror(f)) {
    err = errno ? -errno : -EIO;
    fprintf(stderr, "memsup report: read %s: %s\n", name, strerror(-err));
  }
end:
  free(line);
  return err;
}

int ms_report_load_file(data_t* d, const char* path) {
  FILE* f = fopen(path, "re");
  if (f == NULL) {
    int err = -errno;
    fprintf(stderr, "memsup report: open %s: %s\n", path, strerror(-err));
    return err;
  }
  int err = ms_report_load_stream(d, f, path);
  fclose(f);
  return err;
}

int ms_report_load_list(data_t* d, const char* list) {
  char* copy = strdup(list);
  char* save = NULL;
  int err = copy ? 0 : -ENOMEM;
  for (char* p = copy ? strtok_r(copy, ",", &save) : NULL; p && err == 0;
       p = strtok_r(NULL, ",", &save))
    err = ms_report_load_file(d, p);
  free(copy);
  return err;
}

void ms_report_data_free(data_t* d) {
  life_t* l = d->lives.v;
  restart_t* r = d->rs.v;
  for (size_t i = 0; i < d->lives.n; i++) {
    cJSON_Delete(l[i].g_first);
    cJSON_Delete(l[i].g_last);
  }
  for (size_t i = 0; i < d->rs.n; i++) {
    cJSON_Delete(r[i].g_before);
    cJSON_Delete(r[i].g_after);
    free(r[i].prof_start);
    free(r[i].prof_end);
  }
  ms_report_tallies_free(&d->reasons);
  ms_report_tallies_free(&d->outcomes);
  ms_report_tallies_free(&d->classes);
  ms_report_tallies_free(&d->maps);
  ms_report_tallies_free(&d->grew);
  ms_report_tallies_free(&d->procs);
  for (size_t i = 0; i < d->corr.n; i++) free(((corr_t*)d->corr.v)[i].name);
  free(d->corr.v);
  free(d->marks.v);
  ms_table_free(&d->corr_byname);
  ms_table_free(&d->life_by_pid);
  free(d->pts.v);
  free(d->lives.v);
  free(d->rs.v);
  memset(d, 0, sizeof(*d));
}
