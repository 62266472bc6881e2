/* report.c: the `memsup report` command: its options, and the order of
 * the steps (load, summarize, draw, print).  The steps live in load.c,
 * summary.c, svg.c, text.c and compare.c.
 */
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TOP 5 /* mappings and gauges listed */

static const char* const usage_text =
    "usage: memsup report [--json] [--svg FILE] [--html FILE] LOG [LOG...]\n"
    "       memsup report [--json] --compare A B\n"
    "\n"
    "Summarizes memsup logs (--log and --sample-log files, in any order).\n"
    "Malformed or torn lines are skipped and counted.  A byte figure that\n"
    "memsup cannot have written (negative, or 2^64 and over) is clamped to\n"
    "that range and counted.\n"
    "  --json        print the figures as one JSON object (keys below)\n"
    "  --svg FILE    draw footprint and rss over time, each worker life up to\n"
    "                the value its restart saw, the limit, and a strip of\n"
    "                markers: restarts (class=\"restart\"), dry-run restarts\n"
    "                (\"dry-run\"), purges (\"purge\"), crashes (\"crash\");\n"
    "                over 60 of a kind, bars per round interval instead\n"
    "                (\"restart-rate\", ...).  Lines keep the first, lowest,\n"
    "                highest and last sample of each pixel column.\n"
    "  --html FILE   an HTML page with that chart and the text summary\n"
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
    "  files, lines (non-blank), skipped (malformed lines), clamped\n"
    "  (out-of-range byte figures)\n"
    "  period {start, end, hours}\n"
    "  restarts {total, by_reason{}, dry_run, crashes, purges, per_hour,\n"
    "            per_day, not_helped, over_s, every_s}\n"
    "  interval_s {mean, median}          between memory restarts\n"
    "  growth_mib_per_min {median, lives[{pid, rate, samples, from}]}\n"
    "  before, after {footprint, rss, heap}  medians at restart\n"
    "  state {median_bytes, outcomes{}}\n"
    "  downtime_ms {median, max, known}\n"
    "  classification {}                  evidence classification counts\n"
    "  mappings [{name, private_dirty, restarts}]  top 5, summed over\n"
    "           restarts' evidence, file-backed rows (fixed library pages)\n"
    "           left out\n"
    "  gauges [{name, r, growth, lives, per_life}]  top 5 of those that did\n"
    "           not shrink, by r (Pearson correlation of the gauge with the\n"
    "           footprint over all samples and restarts); growth is summed\n"
    "           over lives of (value at restart - first value of the life)\n"
    "  grew [{name, growth, restarts}]   evidence.grew rows, when present\n"
    "  processes [{name, footprint, restarts}]  evidence.processes (--tree)\n"
    "  allocation_sites {old_pid, start, end, binary, sites[{name, bytes}],\n"
    "           error}  when restarts name heap profiles: jeprof --base of\n"
    "           the last restart's start and end profiles (top 5 by bytes)\n"
    "  slots [{slot, restarts, early, ceiling, waits, waited, waited_s,\n"
    "           crashes, dry_run, life_s, interval_s, downtime_ms,\n"
    "           downtime_known, down_s, down_estimated, growth_mib_per_min,\n"
    "           lives}]  a pool's logs only (--workers N > 1: lines with\n"
    "           \"slot\"), per slot (slot null: lines without one); restarts\n"
    "           are memory restarts (reasons limit and early); waits: wait\n"
    "           lines; waited, waited_s: restarts that waited, seconds;\n"
    "           life_s, interval_s, downtime_ms, growth: medians\n"
    "  pool {slots, the same totals (no interval_s), max_down, max_down_at,\n"
    "           max_down_without_ceiling, overlaps}  max_down: the most\n"
    "           slots down for memory at once (decision to ready; a\n"
    "           decision within 1 ms of another's ready does not overlap)\n"
    "--compare --json keys:\n"
    "  a, b {files, growth_mib_per_min, restarts_per_hour, restarts, hours}\n"
    "  stopped_growing, still_growing [{kind, name, a, b}]: gauges (growth\n"
    "  per life) and mappings (private dirty per restart) that grew in A;\n"
    "  stopped means B is under 5% of A or absent (b null)\n";

static int usage(const char* why) {
  fprintf(stderr,
          "memsup report: %s\n"
          "usage: memsup report [--json] [--svg FILE] [--html FILE] LOG "
          "[LOG...]\n"
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
  cJSON* c = ms_report_compare(ab);
  int rc = c ? print(c, json, ms_report_print_compare) : EXIT_IO;
  cJSON_Delete(c);
  return rc;
}

/* Draws d (as an SVG, or with s an HTML page) into path.  Returns 0 or
 * -errno (printed). */
static int write_chart(const char* path, const data_t* d, const cJSON* s,
                       char** files, int nfiles) {
  int err;
  FILE* f = fopen(path, "we");
  if (f == NULL) {
    err = -errno;
    fprintf(stderr, "memsup report: open %s: %s\n", path, strerror(-err));
    return err;
  }
  err = s ? ms_report_html(f, d, s, files, nfiles)
        : ms_report_svg(f, d, files, nfiles, 0);
  if (fclose(f) != 0 && err == 0) err = -errno;
  if (err < 0)
    fprintf(stderr, "memsup report: write %s: %s\n", path, strerror(-err));
  return err;
}

int ms_report_main(int argc, char** argv) {
  const char *svg = NULL, *html = NULL;
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
    } else if (strcmp(a, "--html") == 0 && i + 1 < argc) {
      html = argv[++i];
    } else if (strcmp(a, "--compare") == 0 && i + 2 < argc) {
      ab[0] = argv[++i];
      ab[1] = argv[++i];
    } else {
      char why[128];
      snprintf(why, sizeof(why), "%s: %s", a,
               strcmp(a, "--svg") == 0 || strcmp(a, "--html") == 0
                   ? "needs a FILE"
               : strcmp(a, "--compare") == 0 ? "needs two logs, A and B"
                                             : "unknown option");
      rc = usage(why);
      goto end;
    }
  }
  if (ab[0] && (nfiles || svg || html)) {
    rc = usage("--compare takes no other logs, no --svg and no --html");
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
    int err = ms_report_load_file(&d, files[i]);
    if (err == -ENOMEM) fputs("memsup report: out of memory\n", stderr);
    if (err < 0) goto end;
  }
  if ((s = ms_report_summarize(&d, files, nfiles, TOP)) == NULL) {
    fputs("memsup report: out of memory\n", stderr);
    goto end;
  }
  if (ms_report_prof(&d, s, TOP) < 0) {
    fputs("memsup report: out of memory\n", stderr);
    goto end;
  }
  if (svg && write_chart(svg, &d, NULL, files, nfiles) < 0) goto end;
  if (html && write_chart(html, &d, s, files, nfiles) < 0) goto end;
  rc = print(s, json, ms_report_print_text);
end:
  cJSON_Delete(s);
  ms_report_data_free(&d);
  free(files);
  return rc;
}
