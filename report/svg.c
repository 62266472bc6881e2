/* svg.c: `memsup report --svg FILE` and `--html FILE`: footprint (thick)
 * and rss (thin) over time, one line per worker life drawn up to the value
 * its restart saw (so a restart visibly happens at the limit), the limit,
 * a legend, and a strip of markers above the plot: one row each for
 * restarts, dry-run restarts, purges and crashes.  A row holds one marker
 * per event while they are few (class="restart", "dry-run", "purge",
 * "crash"), else bars counting them per round interval (restarts per hour,
 * say), which stay readable over days.  Lines are downsampled to the first,
 * minimum, maximum and last sample of each pixel column, so a spike
 * survives and a week of 1 s samples is a few hundred KiB, not 15 MB.
 * Drawn from the records, which ms_report_summarize() has sorted.
 */
#include <errno.h>
#include <math.h> /* isfinite() only: memsup does not link libm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "log.h"

#define SVG_W 960
#define SVG_H 540
#define PAD_L 76
#define PAD_R 84 /* room for a bar row's "max N/hour" */
#define PAD_B 50
#define ROW_H 16 /* one row of the marker strip */
#define STRIP_T 64
#define MAX_MARKS 60 /* more events than this in a row: bars per interval */

#define C_FOOT "#06c"
#define C_RSS "#999"
#define C_LIMIT "#c00"
#define C_RESTART "#e80"
#define C_DRY "#84c"
#define C_PURGE "#2a2"
#define C_CRASH "#c00"
#define C_WAIT "#555"

/* A pool's slots, told apart by colour (slot k: k % 8); no red or grey,
 * which are the limit's, the crashes' and rss's. */
static const char* const slot_color[] = {"#1f77b4", "#ff7f0e", "#2ca02c",
                                         "#9467bd", "#8c564b", "#e377c2",
                                         "#17becf", "#bcbd22"};
#define SLOT_ROWS 8 /* up to this many slots: a strip row each */

static const char* color_of(int slot, const char* none) {
  return slot < 0 ? none : slot_color[slot % 8];
}

typedef struct {
  FILE* f;
  double t0, t1, top; /* x range in seconds, y range 0..top MiB */
  double plot_t;      /* y of the plot's top edge */
} plot_t;

static double px(const plot_t* p, double t) {
  return PAD_L + (t - p->t0) / (p->t1 - p->t0) * (SVG_W - PAD_L - PAD_R);
}

static double py(const plot_t* p, double bytes) {
  return SVG_H - PAD_B - bytes / MIB / p->top * (SVG_H - PAD_B - p->plot_t);
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
    else if (ch == '\n')
      fputc('\n', f);
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

/* A round time interval (seconds) giving at most max steps over range, and
 * its name for "per ..." labels. */
static double time_step(double range, int max, const char** name) {
  static const struct {
    double s;
    const char* name;
  } steps[] = {{1, "s"},        {2, "2 s"},     {5, "5 s"},
               {10, "10 s"},    {15, "15 s"},   {30, "30 s"},
               {60, "min"},     {120, "2 min"}, {300, "5 min"},
               {600, "10 min"}, {900, "15 min"}, {1800, "30 min"},
               {3600, "hour"},  {7200, "2 h"},  {10800, "3 h"},
               {21600, "6 h"},  {43200, "12 h"}, {86400, "day"},
               {172800, "2 days"}, {604800, "week"}, {2592000, "30 days"},
               {31536000, "365 days"}};
  size_t n = sizeof(steps) / sizeof(steps[0]), i = 0;
  while (i + 1 < n && range / steps[i].s > max) i++;
  if (name) *name = steps[i].name;
  return steps[i].s;
}

/* Appends (x, y) unless it is the point just written. */
typedef struct {
  FILE* f;
  double x, y;
  int any;
} pen_t;

static void pen_to(pen_t* pen, double x, double y) {
  if (pen->any && x == pen->x && y == pen->y) return;
  fprintf(pen->f, "%.1f,%.1f ", x, y);
  pen->x = x;
  pen->y = y;
  pen->any = 1;
}

static double value(const point_t* pt, int col) {
  return col ? pt->rss : pt->fp;
}

/* The samples pt[0..n) of one life, min/max-downsampled: per pixel column
 * its first, lowest, highest and last sample, in time order. */
static void life_points(const plot_t* p, pen_t* pen, const point_t* pt,
                        size_t n, int col) {
  for (size_t i = 0, j; i < n; i = j) {
    long column = (long)px(p, pt[i].t);
    size_t lo = i, hi = i;
    for (j = i; j < n && (long)px(p, pt[j].t) == column; j++) {
      if (value(&pt[j], col) < value(&pt[lo], col)) lo = j;
      if (value(&pt[j], col) > value(&pt[hi], col)) hi = j;
    }
    size_t order[4] = {i, lo < hi ? lo : hi, lo < hi ? hi : lo, j - 1};
    for (int k = 0; k < 4; k++)
      pen_to(pen, px(p, pt[order[k]].t), py(p, value(&pt[order[k]], col)));
  }
}

/* Real restarts by the life (slot and pid) they ended (old) and started
 * (new). */
typedef struct {
  ms_table_t ending, starting;
} ends_t;

static int ends_build(const data_t* d, ends_t* e) {
  const restart_t* r = d->rs.v;
  for (size_t i = 0; i < d->rs.n; i++) {
    if (r[i].dry) continue;
    int64_t old_key = ms_report_life_key(r[i].slot, r[i].old_pid);
    int64_t new_key = ms_report_life_key(r[i].slot, r[i].new_pid);
    if ((r[i].old_pid && ms_table_put_num(&e->ending, old_key, i) < 0) ||
        (r[i].new_pid && ms_table_put_num(&e->starting, new_key, i) < 0))
      return -ENOMEM;
  }
  return 0;
}

static const restart_t* ends_get(const data_t* d, const ms_table_t* t,
                                 const point_t* pt) {
  const size_t* i = ms_table_get_num(t, ms_report_life_key(pt->slot, pt->pid));
  return i ? (const restart_t*)d->rs.v + *i : NULL;
}

/* Footprint (col 0) or rss (col 1): one polyline per worker life, from the
 * value its starting restart measured after, through its samples, to the
 * value its ending restart measured before (at the decision, so the line
 * ends where the limit was crossed).  With no samples at all, the same
 * from the restarts alone. */
static void series(const plot_t* p, const data_t* d, const ends_t* e, int col,
                   const char* stroke, const char* attrs) {
  const point_t* pt = d->pts.v;
  const restart_t* r = d->rs.v;
  const char* cls = col ? "rss" : "footprint";
  pen_t pen = {p->f, 0, 0, 0};
  if (d->pts.n == 0) {
    /* From the restarts alone: each life between two restarts, from the
     * value the first measured after to the value the second measured
     * before; never across a restart (the memory dropped there, it did
     * not slide down to the next worker's "after").  In a pool, per slot
     * (and apart, restarts without a slot, another run's). */
    for (int k = d->nslots ? -1 : -2; k < d->nslots; k++) {
      const restart_t* prev = NULL;
      for (size_t i = 0; i < d->rs.n; i++) {
        if (r[i].dry || (k > -2 && r[i].slot != k)) continue;
        if (prev && isfinite(prev->after[col]) && isfinite(r[i].before[col])) {
          pen.any = 0;
          fprintf(p->f,
                  "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" %s "
                  "points=\"",
                  cls, col || k < 0 ? stroke : color_of(k, stroke), attrs);
          pen_to(&pen, px(p, prev->t), py(p, prev->after[col]));
          pen_to(&pen, px(p, r[i].decided), py(p, r[i].before[col]));
          fputs("\"/>\n", p->f);
        }
        prev = &r[i];
      }
    }
    return;
  }
  for (size_t i = 0, j = 0; i < d->pts.n; i = j) {
    for (j = i; j < d->pts.n && pt[j].pid == pt[i].pid &&
                pt[j].slot == pt[i].slot;)
      j++;
    const restart_t* s = ends_get(d, &e->starting, &pt[i]);
    const restart_t* x = ends_get(d, &e->ending, &pt[i]);
    pen.any = 0;
    fprintf(p->f,
            "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" %s "
            "points=\"",
            cls, col ? stroke : color_of(pt[i].slot, stroke), attrs);
    if (s && isfinite(s->after[col]) && s->t <= pt[i].t)
      pen_to(&pen, px(p, s->t), py(p, s->after[col]));
    life_points(p, &pen, pt + i, j - i, col);
    /* Samples go on while the worker saves, past the decision: then the
     * before value ends the line at the last sample's time. */
    if (x && isfinite(x->before[col]))
      pen_to(&pen, px(p, x->decided >= pt[j - 1].t ? x->decided : pt[j - 1].t),
             py(p, x->before[col]));
    fputs("\"/>\n", p->f);
  }
}

static double max_bytes(const data_t* d) {
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
  return m;
}

/* One marker of a strip row at x, centre y. */
static void marker(FILE* f, const char* cls, double x, double y) {
  if (strcmp(cls, "restart") == 0)
    fprintf(f,
            "<path class=\"restart\" d=\"M%.1f,%.1f l-5,-9 h10 z\" "
            "fill=\"" C_RESTART "\"/>\n",
            x, y + 5);
  else if (strcmp(cls, "dry-run") == 0)
    fprintf(f,
            "<path class=\"dry-run\" d=\"M%.1f,%.1f l-5,-9 h10 z\" "
            "fill=\"white\" stroke=\"" C_DRY "\" stroke-width=\"1.5\"/>\n",
            x, y + 5);
  else if (strcmp(cls, "purge") == 0)
    fprintf(f,
            "<circle class=\"purge\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" "
            "fill=\"" C_PURGE "\"/>\n",
            x, y);
  else
    fprintf(f,
            "<path class=\"crash\" d=\"M%.1f,%.1f l8,8 m0,-8 l-8,8\" "
            "stroke=\"" C_CRASH "\" stroke-width=\"2\"/>\n",
            x - 4, y - 4);
}

/* A strip row: its label, then a marker per event (times t[0..n)), or,
 * over MAX_MARKS events, a bar per round interval whose height is its
 * count, with the busiest interval's count named. */
static int strip_row(const plot_t* p, int row, const char* label,
                     const char* cls, const char* color, const double* t,
                     size_t n) {
  double y = STRIP_T + row * ROW_H + ROW_H / 2.0;
  fprintf(p->f,
          "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"%s\">%s</text>\n",
          PAD_L - 6, y + 4, color, label);
  if (n <= MAX_MARKS) {
    for (size_t i = 0; i < n; i++) marker(p->f, cls, px(p, t[i]), y);
    return 0;
  }
  const char* per;
  double step = time_step(p->t1 - p->t0, 200, &per);
  double start = (double)(long long)(p->t0 / step) * step;
  size_t nb = (size_t)((p->t1 - start) / step) + 1, max = 0;
  size_t* count = calloc(nb, sizeof(*count));
  if (count == NULL) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    /* A decision a moment before the first line of the logs counts in
     * the first interval (a negative double to size_t is undefined). */
    double off = (t[i] - start) / step;
    size_t b = off > 0 ? (size_t)off : 0;
    if (b < nb && ++count[b] > max) max = count[b];
  }
  for (size_t b = 0; b < nb; b++) {
    if (count[b] == 0) continue;
    double x0 = px(p, start + b * step), x1 = px(p, start + (b + 1) * step);
    double h = (ROW_H - 2) * (double)count[b] / (double)max;
    if (x0 < PAD_L) x0 = PAD_L;
    if (x1 > SVG_W - PAD_R) x1 = SVG_W - PAD_R;
    fprintf(p->f,
            "<rect class=\"%s-rate\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
            "height=\"%.1f\" fill=\"%s\"><title>%zu</title></rect>\n",
            cls, x0, y + ROW_H / 2.0 - 1 - h, x1 - x0 > 1.5 ? x1 - x0 - 0.5 : 1,
            h, color, count[b]);
  }
  fprintf(p->f,
          "<text x=\"%d\" y=\"%.1f\" fill=\"%s\" font-size=\"10\">"
          "max %zu/%s</text>\n",
          SVG_W - PAD_R + 4, y + 4, color, max, per);
  free(count);
  return 0;
}

/* A pool's strip row: the memory restarts and waits of one slot (all:
 * of every slot), each in its slot's colour: a filled triangle per
 * restart, a hollow one per early restart, a hollow circle per wait and a
 * line over the time a restart waited.  Over MAX_MARKS restarts, bars per
 * interval as strip_row() draws them (waits left out). */
static int pool_row(const plot_t* p, const data_t* d, int row, int slot,
                    int all, const char* label, const char* color) {
  const restart_t* r = d->rs.v;
  const mark_t* m = d->marks.v;
  double y = STRIP_T + row * ROW_H + ROW_H / 2.0;
  size_t n = 0;
  for (size_t i = 0; i < d->rs.n; i++)
    n += !r[i].dry && (all || r[i].slot == slot);
  if (n > MAX_MARKS) {
    double* t = malloc(n * sizeof(*t));
    if (t == NULL) return -ENOMEM;
    n = 0;
    for (size_t i = 0; i < d->rs.n; i++)
      if (!r[i].dry && (all || r[i].slot == slot)) t[n++] = r[i].decided;
    int err = strip_row(p, row, label, "restart", color, t, n);
    free(t);
    return err;
  }
  fprintf(p->f,
          "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"%s\">%s"
          "</text>\n",
          PAD_L - 6, y + 4, color, label);
  for (size_t i = 0; i < d->rs.n; i++) {
    if (r[i].dry || !(all || r[i].slot == slot)) continue;
    const char* c = color_of(r[i].slot, C_RESTART);
    double x = px(p, r[i].decided);
    if (isfinite(r[i].waited_s))
      fprintf(p->f,
              "<line class=\"waited\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
              "y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n",
              px(p, r[i].decided - r[i].waited_s), y, x, y, c);
    fprintf(p->f,
            "<path class=\"restart\" d=\"M%.1f,%.1f l-5,-9 h10 z\" "
            "fill=\"%s\" stroke=\"%s\" stroke-width=\"1.5\">",
            x, y + 5, r[i].early ? "white" : c, c);
    if (r[i].slot >= 0)
      fprintf(p->f, "<title>slot %d%s%s</title>", r[i].slot,
              r[i].early ? ", early" : "", r[i].ceiling ? ", ceiling" : "");
    fputs("</path>\n", p->f);
  }
  for (size_t i = 0; i < d->marks.n; i++)
    if (m[i].kind == MS_MARK_WAIT && (all || m[i].slot == slot))
      fprintf(p->f,
              "<circle class=\"wait\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" "
              "fill=\"white\" stroke=\"%s\" stroke-width=\"1.5\"/>\n",
              px(p, m[i].t), y, color_of(m[i].slot, C_WAIT));
  return 0;
}

/* The legend, one row under the title. */
/* The legend, one row under the title; a pool's adds early restarts and
 * waits, and its footprint lines take their slot's colour. */
static void legend(FILE* f, int pool) {
  static const struct {
    const char* text;
    const char* line; /* a line's attributes, or NULL for a marker */
    const char* mark;
  } items[] = {
      {"footprint", "stroke=\"" C_FOOT "\" stroke-width=\"2\"", NULL},
      {"rss", "stroke=\"" C_RSS "\" stroke-width=\"1\"", NULL},
      {"limit", "stroke=\"" C_LIMIT "\" stroke-dasharray=\"6 4\"", NULL},
      {"restart", NULL, "restart"},
      {"early", NULL, "early"},
      {"wait", NULL, "wait"},
      {"dry-run", NULL, "dry-run"},
      {"purge", NULL, "purge"},
      {"crash", NULL, "crash"},
  };
  double x = PAD_L;
  for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
    const char* text = items[i].text;
    if (!pool && items[i].mark &&
        (strcmp(items[i].mark, "early") == 0 ||
         strcmp(items[i].mark, "wait") == 0))
      continue;
    if (pool && items[i].line && strcmp(text, "footprint") == 0) {
      /* One short stroke per colour of the slots. */
      for (int k = 0; k < 4; k++)
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"44\" x2=\"%.1f\" y2=\"44\" "
                "stroke=\"%s\" stroke-width=\"2\"/>\n",
                x + 5.5 * k, x + 5.5 * (k + 1), slot_color[k]);
      text = "footprint (slot colour)";
      fprintf(f, "<text x=\"%.1f\" y=\"48\">%s</text>\n", x + 26, text);
      x += 26 + 8 * strlen(text) + 18;
      continue;
    }
    /* The legend's own markers and lines carry no class: counting a
     * class counts events. */
    if (items[i].line)
      fprintf(f,
              "<line x1=\"%.1f\" y1=\"44\" x2=\"%.1f\" y2=\"44\" %s/>\n", x,
              x + 22, items[i].line);
    else if (strcmp(items[i].mark, "restart") == 0)
      fprintf(f, "<path d=\"M%.1f,49 l-5,-9 h10 z\" fill=\"" C_RESTART
                 "\"/>\n", x + 11);
    else if (strcmp(items[i].mark, "early") == 0)
      fprintf(f, "<path d=\"M%.1f,49 l-5,-9 h10 z\" fill=\"white\" stroke=\""
                 C_RESTART "\" stroke-width=\"1.5\"/>\n", x + 11);
    else if (strcmp(items[i].mark, "wait") == 0)
      fprintf(f, "<line x1=\"%.1f\" y1=\"44\" x2=\"%.1f\" y2=\"44\" stroke=\""
                 C_WAIT "\" stroke-width=\"2\"/><circle cx=\"%.1f\" cy=\"44\" "
                 "r=\"3.5\" fill=\"white\" stroke=\"" C_WAIT "\" "
                 "stroke-width=\"1.5\"/>\n", x + 3, x + 20, x + 5);
    else if (strcmp(items[i].mark, "dry-run") == 0)
      fprintf(f, "<path d=\"M%.1f,49 l-5,-9 h10 z\" fill=\"white\" stroke=\""
                 C_DRY "\" stroke-width=\"1.5\"/>\n", x + 11);
    else if (strcmp(items[i].mark, "purge") == 0)
      fprintf(f, "<circle cx=\"%.1f\" cy=\"44\" r=\"4\" fill=\"" C_PURGE
                 "\"/>\n", x + 11);
    else
      fprintf(f, "<path d=\"M%.1f,40 l8,8 m0,-8 l-8,8\" stroke=\"" C_CRASH
                 "\" stroke-width=\"2\"/>\n", x + 7);
    fprintf(f, "<text x=\"%.1f\" y=\"48\">%s</text>\n", x + 26, text);
    x += 26 + 8 * strlen(text) + 18;
  }
}

/* Round time ticks along the x axis, labelled as a person reads them. */
static void time_axis(const plot_t* p) {
  char label[32];
  double range = p->t1 - p->t0;
  double step = time_step(range, 7, NULL);
  const char* f = step >= 86400  ? "%m-%d"
                  : range > 86400 ? "%m-%d %H:%M"
                  : step < 60     ? "%H:%M:%S"
                                  : "%H:%M";
  for (double t = (double)(long long)(p->t0 / step) * step; t <= p->t1;
       t += step) {
    if (t < p->t0) continue;
    time_t sec = (time_t)t;
    struct tm tm;
    gmtime_r(&sec, &tm);
    strftime(label, sizeof(label), f, &tm);
    fprintf(p->f,
            "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\"/>"
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%d\" "
            "stroke=\"#eee\"/>\n"
            "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
            px(p, t), SVG_H - PAD_B, px(p, t), SVG_H - PAD_B + 4, px(p, t),
            p->plot_t, px(p, t), SVG_H - PAD_B, px(p, t), SVG_H - PAD_B + 16,
            label);
  }
  fprintf(p->f,
          "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time (UTC%s)</text>\n",
          (SVG_W + PAD_L) / 2, SVG_H - 12,
          range > 86400 || step >= 86400 ? ", month-day" : "");
}

/* The times of the events of one kind: 0 restarts, 1 dry-run, 2 purges,
 * 3 crashes.  *n is how many; NULL with *n 0 when none (or no memory:
 * -ENOMEM in *err). */
static double* times_of(const data_t* d, int kind, size_t* n, int* err) {
  const restart_t* r = d->rs.v;
  const mark_t* m = d->marks.v;
  double* t = malloc((d->rs.n + d->marks.n + 1) * sizeof(*t));
  *n = 0;
  if (t == NULL) {
    *err = -ENOMEM;
    return NULL;
  }
  if (kind < 2) {
    for (size_t i = 0; i < d->rs.n; i++)
      if (r[i].dry == kind) t[(*n)++] = r[i].decided;
  } else {
    for (size_t i = 0; i < d->marks.n; i++)
      if (m[i].kind == (kind == 2 ? MS_MARK_PURGE : MS_MARK_CRASH))
        t[(*n)++] = m[i].t;
  }
  return t;
}

int ms_report_svg(FILE* f, const data_t* d, char** files, int nfiles,
                  int inline_svg) {
  static const char* const row_label[] = {"restarts", "dry-run", "purges",
                                          "crashes"};
  static const char* const row_cls[] = {"restart", "dry-run", "purge",
                                        "crash"};
  static const char* const row_color[] = {C_RESTART, C_DRY, C_PURGE, C_CRASH};
  plot_t p = {f, d->t0, d->t1 > d->t0 ? d->t1 : d->t0 + 1, 0, 0};
  const restart_t* r = d->rs.v;
  double* t[4] = {NULL, NULL, NULL, NULL};
  size_t n[4];
  int rows = 0, err = 0;
  ends_t ends = {{0}, {0}};
  char label[32];
  /* A pool's restarts: a strip row per slot while they are few enough to
   * read, else one row with a colour per slot; another run's restarts
   * without a slot in a row of their own. */
  int pool = d->nslots > 0, per_slot = pool && d->nslots <= SLOT_ROWS;
  int unslotted = 0;
  for (size_t i = 0; i < d->rs.n && per_slot && !unslotted; i++)
    unslotted = !r[i].dry && r[i].slot < 0;
  for (int k = 0; k < 4; k++) {
    t[k] = times_of(d, k, &n[k], &err);
    rows += n[k] > 0 && !(pool && k == 0);
  }
  if (per_slot)
    rows += d->nslots + unslotted;
  else if (pool)
    rows += n[0] > 0 || d->waits > 0;
  if (err < 0 || ends_build(d, &ends) < 0) {
    err = -ENOMEM;
    goto end;
  }
  p.plot_t = STRIP_T + (rows ? rows : 1) * ROW_H + 10;
  /* Under one byte (only a hand-made log has that) the axis is the empty
   * chart's 0..1 MiB: a subnormal maximum would make nice_step() 0 and the
   * loop that finds the top of the axis endless (found by fuzz_report). */
  double max = max_bytes(d) >= 1 ? max_bytes(d) / MIB : 1;
  int gib = max * 1.05 >= 2048;
  double unit = gib ? 1024 : 1; /* MiB per axis unit */
  double step = nice_step(max * 1.05 / unit);
  while (p.top < max * 1.05 / unit) p.top += step;
  p.top *= unit;
  if (!inline_svg)
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", p.f);
  fprintf(p.f,
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
          "<text x=\"%d\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">"
          "memsup: memory of each worker life, ",
          (SVG_W + PAD_L) / 2);
  xml_puts(p.f, d->t0s);
  fputs(" to ", p.f);
  xml_puts(p.f, d->t1s);
  fputs("</text>\n", p.f);
  legend(p.f, pool);
  int row = 0;
  if (per_slot) {
    for (int k = 0; k < d->nslots && err == 0; k++) {
      snprintf(label, sizeof(label), "slot %d", k);
      err = pool_row(&p, d, row++, k, 0, label, color_of(k, C_RESTART));
    }
    if (unslotted && err == 0)
      err = pool_row(&p, d, row++, -1, 0, "no slot", C_RESTART);
  } else if (pool && (n[0] > 0 || d->waits > 0)) {
    err = pool_row(&p, d, row++, 0, 1, row_label[0], C_RESTART);
  }
  if (err < 0) goto end;
  for (int k = 0; k < 4; k++)
    if (n[k] && !(pool && k == 0) &&
        strip_row(&p, row++, row_label[k], row_cls[k], row_color[k], t[k],
                  n[k]) < 0) {
      err = -ENOMEM;
      goto end;
    }
  fprintf(p.f,
          "<g stroke=\"black\">"
          "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%d\"/>"
          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/></g>\n",
          PAD_L, p.plot_t, PAD_L, SVG_H - PAD_B, PAD_L, SVG_H - PAD_B,
          SVG_W - PAD_R, SVG_H - PAD_B);
  for (double v = 0; v <= p.top / unit + step / 2; v += step)
    fprintf(p.f,
            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>"
            "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g %s</text>\n",
            PAD_L + 1, py(&p, v * unit * MIB), SVG_W - PAD_R,
            py(&p, v * unit * MIB), PAD_L - 4, py(&p, v * unit * MIB) + 4, v,
            gib ? "GiB" : "MiB");
  time_axis(&p);
  /* A faint line down the plot per restart while they are few enough to
   * tell apart; the strip carries them when there are more. */
  if (n[0] <= MAX_MARKS)
    for (size_t i = 0; i < d->rs.n; i++)
      if (!r[i].dry)
        fprintf(p.f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%d\" "
                "stroke=\"%s\" stroke-opacity=\"0.35\"/>\n",
                px(&p, r[i].decided), p.plot_t, px(&p, r[i].decided),
                SVG_H - PAD_B, color_of(r[i].slot, C_RESTART));
  if (d->limit > 0)
    fprintf(p.f,
            "<line class=\"limit\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
            "stroke=\"" C_LIMIT "\" stroke-dasharray=\"6 4\"/>\n"
            "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"" C_LIMIT
            "\">limit %s</text>\n",
            PAD_L, py(&p, d->limit), SVG_W - PAD_R, py(&p, d->limit),
            SVG_W - PAD_R, py(&p, d->limit) - 4,
            ms_fmt_bytes(label, (unsigned long long)d->limit));
  series(&p, d, &ends, 1, C_RSS, "stroke-width=\"1\"");
  series(&p, d, &ends, 0, C_FOOT,
         "stroke-width=\"2\" stroke-linejoin=\"round\"");
  fputs("</svg>\n", p.f);
end:
  for (int k = 0; k < 4; k++) free(t[k]);
  ms_table_free(&ends.ending);
  ms_table_free(&ends.starting);
  if (err < 0) return err;
  return ferror(p.f) ? -EIO : 0;
}

int ms_report_html(FILE* f, const data_t* d, const cJSON* summary,
                   char** files, int nfiles) {
  char* text = NULL;
  size_t len = 0;
  FILE* m = open_memstream(&text, &len);
  if (m == NULL) return -ENOMEM;
  ms_report_print_text(m, summary);
  if (fclose(m) != 0) {
    free(text);
    return -ENOMEM;
  }
  fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n<title>"
        "memsup report: ",
        f);
  for (int i = 0; i < nfiles; i++) {
    xml_puts(f, files[i]);
    fputs(i + 1 < nfiles ? ", " : "", f);
  }
  fputs("</title>\n<style>body{font-family:sans-serif;margin:1em 2em}"
        "pre{font-size:13px;line-height:1.3}</style></head>\n<body>\n"
        "<h1>memsup report</h1>\n",
        f);
  int err = ms_report_svg(f, d, files, nfiles, 1);
  fputs("\n<pre>", f);
  xml_puts(f, text);
  fputs("</pre>\n</body></html>\n", f);
  free(text);
  if (err < 0) return err;
  return ferror(f) ? -EIO : 0;
}
