/* text.c: the summary (summary.c's object) as the text a person reads,
 * and the small formatting helpers the other outputs share.
 */
#include <math.h> /* isfinite() only: memsup does not link libm */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "log.h"

#define num ms_report_num
#define str ms_report_str
#define at ms_report_at
#define jnum ms_report_jnum
#define fmt ms_report_fmt
#define size ms_report_size

const cJSON* ms_report_at(const cJSON* o, const char* path) {
  char key[64];
  while (o && *path) {
    size_t n = strcspn(path, ".");
    snprintf(key, sizeof(key), "%.*s", (int)n, path);
    o = cJSON_GetObjectItemCaseSensitive(o, key);
    path += n + (path[n] == '.');
  }
  return o;
}

double ms_report_jnum(const cJSON* o, const char* path) {
  const cJSON* v = at(o, path);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

const char* ms_report_fmt(char buf[32], const char* f, double v) {
  if (!isfinite(v)) return "n/a";
  snprintf(buf, 32, f, v);
  return buf;
}

const char* ms_report_size(char buf[32], double v) {
  /* Figures are clamped when loaded, but sums of them (mappings over
   * restarts) can pass 2^64, where the conversion would be undefined. */
  if (!isfinite(v)) return "n/a";
  if (v > MS_REPORT_BYTES_MAX) v = MS_REPORT_BYTES_MAX;
  return ms_fmt_bytes(buf, v > 0 ? (unsigned long long)v : 0);
}

/* A gauge figure in units a person reads: a byte count when the gauge's
 * name says bytes, else 347.5k / 1.2M / 3.0G (with the sign). */
static const char* gauge_fmt(char buf[32], const char* name, double v) {
  static const char* const si[] = {"", "k", "M", "G", "T"};
  int u = 0;
  if (!isfinite(v)) return "n/a";
  if (name && strstr(name, "bytes")) {
    char tmp[32];
    snprintf(buf, 32, "%s%s", v < 0 ? "-" : "+", size(tmp, v < 0 ? -v : v));
    return buf;
  }
  double a = v < 0 ? -v : v;
  while (a >= 1000 && u < 4) {
    a /= 1000;
    u++;
  }
  if (u == 0)
    snprintf(buf, 32, "%+.4g", v);
  else
    snprintf(buf, 32, "%s%.1f%s", v < 0 ? "-" : "+", a, si[u]);
  return buf;
}

/* A duration as "25.0 s", "12.5 min", "3.2 h" or "2.1 days". */
static const char* dur_fmt(char buf[32], double s) {
  if (!isfinite(s)) return "n/a";
  if (s < 120)
    snprintf(buf, 32, "%.1f s", s);
  else if (s < 7200)
    snprintf(buf, 32, "%.1f min", s / 60);
  else if (s < 2 * 86400)
    snprintf(buf, 32, "%.1f h", s / 3600);
  else
    snprintf(buf, 32, "%.1f days", s / 86400);
  return buf;
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

/* One row of the per-slot table: label, then o's figures. */
static void pool_row(FILE* f, const char* label, const cJSON* o) {
  char a[32], b[32], c[32], d[32];
  fprintf(f, "%6s%10g%7g%7g%10s%9g%8s%13s%9s\n", label, num(o, "restarts"),
          num(o, "early"), num(o, "waits"), fmt(a, "%.2f", num(o, "waited_s")),
          num(o, "crashes"), fmt(b, "%.1f", num(o, "life_s")),
          fmt(c, "%.2f", num(o, "downtime_ms")),
          fmt(d, "%.2f", num(o, "growth_mib_per_min")));
}

/* A pool's logs (summary has "pool"): a row per slot and the totals, then
 * the most slots down for memory at once. */
static void print_pool(FILE* f, const cJSON* s) {
  const cJSON *p = at(s, "pool"), *e;
  char label[16];
  if (p == NULL) return;
  fprintf(f,
          "slots             %g (per slot: memory restarts, early ones, waits "
          "and the\n"
          "                  seconds waited, crashes; medians of life, "
          "downtime, growth)\n",
          num(p, "slots"));
  fputs("  slot  restarts  early  waits  waited s  crashes  life s  "
        "downtime ms  MiB/min\n", f);
  cJSON_ArrayForEach(e, at(s, "slots")) {
    const cJSON* k = cJSON_GetObjectItemCaseSensitive(e, "slot");
    /* Lines without a slot: another run, without a pool, in the same log. */
    if (cJSON_IsNumber(k))
      snprintf(label, sizeof(label), "%g", k->valuedouble);
    else
      snprintf(label, sizeof(label), "none");
    pool_row(f, label, e);
  }
  pool_row(f, "pool", p);
  double most = num(p, "max_down"), gated = num(p, "max_down_without_ceiling");
  fprintf(f, "down for memory   at most %g slot%s at once", most,
          most == 1 ? "" : "s");
  if (most <= 1)
    fprintf(f, ": never two (%g restarts, decision to ready)",
            num(p, "restarts"));
  else
    fprintf(f,
            ", first at %s;\n                  %g restart%s decided while "
            "another slot was down",
            str(p, "max_down_at") ? str(p, "max_down_at") : "n/a",
            num(p, "overlaps"), num(p, "overlaps") == 1 ? "" : "s");
  if (num(p, "ceiling") > 0)
    fprintf(f,
            "\n                  without the %g past the hard ceiling "
            "(which do not wait): at most %g",
            num(p, "ceiling"), gated);
  fputc('\n', f);
  if (num(p, "down_estimated") > 0)
    fprintf(f, "                  (%g down for memory without a ready: counted "
            "to the new worker's spawn)\n", num(p, "down_estimated"));
}

void ms_report_print_text(FILE* f, const cJSON* s) {
  char a[32], b[32], c[32];
  const cJSON* e;
  double skipped = jnum(s, "skipped"), clamped = jnum(s, "clamped");
  fprintf(f, "memsup report: %g lines", jnum(s, "lines"));
  if (skipped > 0)
    fprintf(f, " (skipped %g malformed line%s)", skipped,
            skipped == 1 ? "" : "s");
  if (clamped > 0)
    fprintf(f, " (%g out-of-range value%s clamped to 0..2^64 B)", clamped,
            clamped == 1 ? "" : "s");
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
  /* The rate over what the logs cover: "per day" from a 25 s log would
   * state what nobody saw. */
  double over = jnum(s, "restarts.over_s");
  fprintf(f, "restart rate      %g in %s", jnum(s, "restarts.total"),
          dur_fmt(a, over));
  if (isfinite(jnum(s, "restarts.every_s")))
    fprintf(f, ", one every %s", dur_fmt(b, jnum(s, "restarts.every_s")));
  if (over >= 86400)
    fprintf(f, " (%s per day)", fmt(c, "%.2f", jnum(s, "restarts.per_day")));
  else if (over >= 3600)
    fprintf(f, " (%s per hour)", fmt(c, "%.2f", jnum(s, "restarts.per_hour")));
  fputc('\n', f);
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
  fprintf(f, "downtime          median %s ms, max %s ms (decision to ready; "
          "known for %g restarts, the SDK's)\n",
          fmt(a, "%.2f", jnum(s, "downtime_ms.median")),
          fmt(b, "%.2f", jnum(s, "downtime_ms.max")),
          jnum(s, "downtime_ms.known"));
  print_pool(f, s);
  fputs("classification    ", f);
  print_counts(f, at(s, "classification"), "\n");
  fputs("mappings that grew most (private dirty summed over restarts):\n", f);
  cJSON_ArrayForEach(e, at(s, "mappings")) fprintf(
      f, "  %-30s %s in %g restarts\n",
      *str(e, "name") ? str(e, "name") : "(anonymous: allocator arenas, mmap)",
      size(a, num(e, "private_dirty")), num(e, "restarts"));
  if (cJSON_GetArraySize(at(s, "grew")) > 0) {
    fputs("regions that grew (footprint over a life, summed over restarts):\n",
          f);
    cJSON_ArrayForEach(e, at(s, "grew")) {
      double g = num(e, "growth");
      fprintf(f, "  %-30s %s%s in %g restarts\n",
              *str(e, "name") ? str(e, "name") : "(anonymous)",
              g < 0 ? "-" : "+", size(a, g < 0 ? -g : g), num(e, "restarts"));
    }
  }
  if (cJSON_GetArraySize(at(s, "processes")) > 0) {
    fputs("processes holding the most (footprint summed over restarts):\n", f);
    cJSON_ArrayForEach(e, at(s, "processes"))
        fprintf(f, "  %-30s %s in %g restarts\n", str(e, "name"),
                size(a, num(e, "footprint")), num(e, "restarts"));
  }
  fputs("gauges that grew, best tracking the footprint first (r: correlation "
        "with\nthe footprint over all lives; first value of a life to its "
        "restart):\n", f);
  cJSON_ArrayForEach(e, at(s, "gauges")) fprintf(
      f, "  %-30s r %5s  %s over %g lives (%s per life)\n", str(e, "name"),
      fmt(b, "%.2f", num(e, "r")), gauge_fmt(a, str(e, "name"), num(e, "growth")),
      num(e, "lives"), gauge_fmt(c, str(e, "name"), num(e, "per_life")));
  if (cJSON_GetArraySize(at(s, "gauges")) == 0) fputs("  none\n", f);
  const cJSON* as = at(s, "allocation_sites");
  if (as) {
    fputs("allocation sites that grew over a life (jeprof --base, start of "
          "life to restart):\n", f);
    if (str(as, "error"))
      fprintf(f, "  not available: %s\n", str(as, "error"));
    else
      fprintf(f, "  worker %g, %s\n", num(as, "old_pid"), str(as, "binary"));
    cJSON_ArrayForEach(e, at(as, "sites"))
        fprintf(f, "  %-30s +%s\n", str(e, "name"), size(a, num(e, "bytes")));
  }
  fprintf(f, "restarts that did not help: %g\n",
          jnum(s, "restarts.not_helped"));
}
