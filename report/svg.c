/* svg.c: `memsup report --svg FILE`: footprint (thick) and rss (thin) over
 * time, one polyline per worker life, the limit, and one marker
 * (class="restart") per memory restart.  Drawn from the records, which
 * ms_report_summarize() has sorted.
 */
#include <errno.h>
#include <math.h> /* isfinite() only: memsup does not link libm */
#include <stdio.h>
#include <time.h>

#include "internal.h"
#include "log.h"

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
  /* Under one byte (only a hand-made log has that) the axis is the empty
   * chart's 0..1 MiB: a subnormal maximum would make nice_step() 0 and the
   * loop that finds the top of the axis endless (found by fuzz_report). */
  return m >= 1 ? m / MIB : 1;
}

int ms_report_svg(FILE* f, const data_t* d, char** files, int nfiles) {
  plot_t p = {f, d->t0, d->t1 > d->t0 ? d->t1 : d->t0 + 1, 0};
  const restart_t* r = d->rs.v;
  double step = nice_step(max_mib(d) * 1.05);
  char label[32];
  while (p.top < max_mib(d) * 1.05) p.top += step;
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
            SVG_W - PAD_R, py(&p, d->limit) - 4,
            ms_fmt_bytes(label, (unsigned long long)d->limit));
  for (size_t i = 0; i < d->rs.n; i++)
    fprintf(
        p.f,
        "<line class=\"restart\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
        "stroke=\"#e80\"/>\n",
        px(&p, r[i].t), PAD_T, px(&p, r[i].t), SVG_H - PAD_B);
  series(&p, d, 1, "fill=\"none\" stroke=\"#999\" stroke-width=\"1\"");
  series(&p, d, 0, "fill=\"none\" stroke=\"#06c\" stroke-width=\"2\"");
  fputs("</svg>\n", p.f);
  return ferror(p.f) ? -EIO : 0;
}
