/* test_report.c: `memsup report` on known-answer logs in
 * $MEMSUP_FIXTURES/logs/.  Each run is a forked child calling
 * ms_report_main() with stdout and stderr in files, so exit codes and
 * output are the real ones.  Expected figures are worked out by hand in
 * the comments from the fixture values (MiB = 1048576 bytes):
 *
 * hourly.jsonl: start pid 100 at 00:00; restarts at 01:00, 02:00, 03:00,
 *   04:00 (old->new pid 100->101, 101->102, 103->104, 104->105); pid 102
 *   crashes at 02:30 and pid 103 starts.  before.footprint 120, 154, 45,
 *   184 MiB; after.footprint 4, 6, 4, 8 MiB; rss = footprint + 2 MiB;
 *   uptime_s 3600, 3600, 1800, 3600; downtime_ms 2, 4, 1, 3; state bytes
 *   1000 (ok), 3000 (ok), 2000 (failed), none; heap 100, 110 MiB in the
 *   first two; helped true, true, false, absent.
 * fixed_restarts.jsonl + fixed_samples.jsonl: pid 300 samples every 30 s
 *   at 10, 11, 12, 13, 14 MiB (2 MiB/min exactly), restart at 00:02 into
 *   pid 301, stop at 02:00.
 * torn.jsonl: hourly.jsonl with 5 bad lines, a blank one and a torn last
 *   line in between.
 * out_of_range.jsonl: restarts 500->501 and 501->502 whose before.footprint
 *   is 9.5e19 (over 2^64), one with rss -1 and state bytes 1e30, both with
 *   [heap] private dirty 9.5e19, and a sample of 501 with footprint 2e20:
 *   7 figures out of range.
 * pool.jsonl (--workers 2: every line has "slot"; limit 64 MiB): gens
 *   1, 2, 3 in both slots.  Slot 0: pid 200 (samples 10, 20, 30 MiB at
 *   00:00:10/20/30: 60 MiB/min) restarted at 00:01:00.000 ("limit",
 *   downtime 40 ms) into 202, which is restarted "early" at 00:01:50
 *   (before 60 MiB, after-of-its-start 4 MiB, uptime 50 s: 67.2 MiB/min,
 *   downtime 50) into 204, which crashes at 00:02:30.  Slot 1: pid 201
 *   crosses during slot 0's restart ("wait" at 00:01:00.010) and is
 *   restarted at 00:01:00.040, slot 0's ready (waited_s 0.03, downtime
 *   45; before 65 MiB, no starting restart, uptime 60: 65 MiB/min), into
 *   203 (before 66, after 5, uptime 61: 60 MiB/min), restarted at
 *   00:02:00 (downtime 30) into pid 200: slot 0's first pid, reused
 *   (samples 5, 6, 7 MiB 10 s apart: 6 MiB/min).
 * pool_ceiling.jsonl: a run without a pool (a restart 50->51 at
 *   23:59:00, no "slot"), then 3 slots: slot 0 restarted at 00:00:10.000
 *   without the SDK (downtime null, gone 100 + spawn 5 ms: down to
 *   10.105, estimated), slot 1 at 00:00:10.050 past the ceiling
 *   ("ceiling": true, waited_s 0.03, downtime 80), slot 2 at 00:00:20.
 */
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "internal.h"
#include "report.h"
#include "table.h"

#define MIB 1048576.0

static char dir[64]; /* scratch directory for SVG files */
static char out[1 << 22]; /* --json of thousands of lives */
static char err[4096];
static char paths[4][4096];

/* $MEMSUP_FIXTURES/logs/name, in one of four rotating buffers. */
static char* fx(const char* name) {
  static int k;
  const char* root = getenv("MEMSUP_FIXTURES");
  char* p = paths[k++ % 4];
  snprintf(p, sizeof(paths[0]), "%s/logs/%s", root ? root : "tests/fixtures",
           name);
  return p;
}

static void slurp(FILE* f, char* buf, size_t len) {
  rewind(f);
  size_t n = fread(buf, 1, len - 1, f);
  buf[n] = '\0';
  fclose(f);
}

/* Runs ms_report_main in a child; returns its exit code. */
static int run_argv(char** argv) {
  int argc = 0, status;
  FILE* o = tmpfile();
  FILE* e = tmpfile();
  assert_non_null(o);
  assert_non_null(e);
  while (argv[argc]) argc++;
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fileno(o), 1);
    dup2(fileno(e), 2);
    alarm(60); /* a report that never ends fails the test, not the run */
    exit(ms_report_main(argc, argv));
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  slurp(o, out, sizeof(out));
  slurp(e, err, sizeof(err));
  return WEXITSTATUS(status);
}
#define RUN(...) run_argv((char*[]){"report", __VA_ARGS__, NULL})

static void assert_contains(const char* hay, const char* needle) {
  if (strstr(hay, needle) == NULL) fail_msg("'%s' not in:\n%s", needle, hay);
}

/* The number at a dotted path ("restarts.per_hour"); fails if absent. */
static double at(const cJSON* o, const char* path) {
  char key[64];
  while (o && *path) {
    size_t n = strcspn(path, ".");
    snprintf(key, sizeof(key), "%.*s", (int)n, path);
    o = cJSON_GetObjectItemCaseSensitive(o, key);
    path += n + (path[n] == '.');
  }
  if (!cJSON_IsNumber(o)) fail_msg("no number at %s", path);
  return o->valuedouble;
}

/* The --json output of a successful run, parsed. */
static cJSON* json_of(int rc) {
  assert_int_equal(rc, 0);
  cJSON* j = cJSON_Parse(out);
  if (j == NULL) fail_msg("not JSON:\n%s", out);
  return j;
}

/* The item of array key whose "name" (or "pid") matches. */
static const cJSON* find(const cJSON* j, const char* key, const char* name,
                         int pid) {
  const cJSON* e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, key)) {
    const cJSON* n = cJSON_GetObjectItemCaseSensitive(e, name ? "name" : "pid");
    if (name ? strcmp(n->valuestring, name) == 0 : n->valuedouble == pid)
      return e;
  }
  fail_msg("%s has no %s %d", key, name ? name : "pid", pid);
  return NULL;
}

static int count(const char* hay, const char* needle) {
  int n = 0;
  for (const char* p = hay; (p = strstr(p, needle)) != NULL; p++) n++;
  return n;
}

static int make_dir(void** state) {
  (void)state;
  strcpy(dir, "/tmp/memsup-report-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void** state) {
  char cmd[128];
  (void)state;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd);
}

/* 4 memory restarts over the covered period 00:00 (start line) to 04:00
 * (last restart) = 4 h: 4 / 4 = 1.0 per hour, 24 per day.  Intervals
 * 3600, 3600, 3600 s: mean and median 3600. */
static void report_rates_use_first_to_last_line(void** state) {
  (void)state;
  cJSON* j = json_of(RUN("--json", fx("hourly.jsonl")));
  assert_float_equal(at(j, "period.hours"), 4.0, 1e-9);
  assert_float_equal(at(j, "restarts.total"), 4, 0);
  assert_float_equal(at(j, "restarts.by_reason.limit"), 4, 0);
  assert_float_equal(at(j, "restarts.crashes"), 1, 0);
  assert_float_equal(at(j, "restarts.per_hour"), 1.0, 1e-9);
  assert_float_equal(at(j, "restarts.per_day"), 24.0, 1e-9);
  assert_float_equal(at(j, "interval_s.mean"), 3600, 1e-6);
  assert_float_equal(at(j, "interval_s.median"), 3600, 1e-6);
  assert_float_equal(at(j, "restarts.not_helped"), 1, 0);
  assert_float_equal(at(j, "skipped"), 0, 0);
  cJSON_Delete(j);
}

/* No samples, so each life's rate is (before of its ending restart - after
 * of its starting restart, or 0) / uptime, in MiB/min:
 *   pid 100: (120 - 0) / 60 min = 2.0     pid 101: (154 - 4) / 60 = 2.5
 *   pid 103: (45 - 0) / 30 min = 1.5      pid 104: (184 - 4) / 60 = 3.0
 * pid 102 crashed and 105 never ended: no rate.  Median (2.0+2.5)/2. */
static void report_growth_without_samples_comes_from_restarts(void** state) {
  (void)state;
  cJSON* j = json_of(RUN("--json", fx("hourly.jsonl")));
  cJSON* g = cJSON_GetObjectItemCaseSensitive(j, "growth_mib_per_min");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(g, "lives")), 4);
  assert_float_equal(at(find(g, "lives", NULL, 100), "rate"), 2.0, 1e-9);
  assert_float_equal(at(find(g, "lives", NULL, 101), "rate"), 2.5, 1e-9);
  assert_float_equal(at(find(g, "lives", NULL, 103), "rate"), 1.5, 1e-9);
  assert_float_equal(at(find(g, "lives", NULL, 104), "rate"), 3.0, 1e-9);
  assert_float_equal(at(g, "median"), 2.25, 1e-9);
  cJSON_Delete(j);
}

/* pid 300: 5 samples, +1 MiB per 30 s, so the slope is 2.0 MiB/min; the
 * restart estimate would be (14 - 0) / 2 min = 7, so the samples won.
 * pid 301 has 2 samples and no ending restart: no rate. */
static void report_growth_is_sample_slope_with_three_or_more(void** state) {
  char list[8192];
  (void)state;
  snprintf(list, sizeof(list), "%s", fx("fixed_samples.jsonl"));
  cJSON* j = json_of(RUN("--json", list, fx("fixed_restarts.jsonl")));
  cJSON* g = cJSON_GetObjectItemCaseSensitive(j, "growth_mib_per_min");
  const cJSON* l = find(g, "lives", NULL, 300);
  assert_float_equal(at(l, "rate"), 2.0, 1e-6);
  assert_float_equal(at(l, "samples"), 5, 0);
  assert_string_equal(cJSON_GetObjectItem(l, "from")->valuestring, "samples");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(g, "lives")), 1);
  /* 00:00 to the stop line at 02:00, one restart: 0.5 per hour. */
  assert_float_equal(at(j, "restarts.per_hour"), 0.5, 1e-9);
  cJSON_Delete(j);
}

/* before.footprint 45,120,154,184 -> (120+154)/2 = 137 MiB; after 4,4,6,8
 * -> 5 MiB; rss 2 MiB more; heap 100,110 -> 105 MiB.  State 1000, 2000,
 * 3000 -> 2000; downtime 1,2,3,4 -> median 2.5, max 4.  [heap] 100+120+30
 * = 250 MiB in 3 restarts, anon 10+50 = 60 MiB in 2.  cache_entries per
 * life (value at restart - first value, from the restarts' after when no
 * sample): 100: 5000-0, 101: 6000-0, 103: 1000-0, 104: 8000-0 = 20000;
 * conns: 0 + (12-10) + 0 + (11-10) = 3. */
static void report_medians_and_what_grew(void** state) {
  (void)state;
  cJSON* j = json_of(RUN("--json", fx("hourly.jsonl")));
  assert_float_equal(at(j, "before.footprint"), 137 * MIB, 0.5);
  assert_float_equal(at(j, "after.footprint"), 5 * MIB, 0.5);
  assert_float_equal(at(j, "before.rss"), 139 * MIB, 0.5);
  assert_float_equal(at(j, "after.rss"), 7 * MIB, 0.5);
  assert_float_equal(at(j, "before.heap"), 105 * MIB, 0.5);
  assert_true(cJSON_IsNull(
      cJSON_GetObjectItem(cJSON_GetObjectItem(j, "after"), "heap")));
  assert_float_equal(at(j, "state.median_bytes"), 2000, 0);
  assert_float_equal(at(j, "state.outcomes.ok"), 2, 0);
  assert_float_equal(at(j, "state.outcomes.failed"), 1, 0);
  assert_float_equal(at(j, "downtime_ms.median"), 2.5, 1e-9);
  assert_float_equal(at(j, "downtime_ms.max"), 4, 1e-9);
  assert_float_equal(at(j, "downtime_ms.known"), 4, 1e-9);
  assert_float_equal(at(j, "classification.growth"), 2, 0);
  assert_float_equal(at(j, "classification.allocator-retention"), 1, 0);
  const cJSON* m = cJSON_GetObjectItem(j, "mappings");
  assert_string_equal(cJSON_GetArrayItem(m, 0)->child->valuestring, "[heap]");
  assert_float_equal(at(find(j, "mappings", "[heap]", 0), "private_dirty"),
                     250 * MIB, 0.5);
  assert_float_equal(at(find(j, "mappings", "anon", 0), "restarts"), 2, 0);
  assert_float_equal(at(find(j, "gauges", "cache_entries", 0), "growth"), 20000,
                     1e-9);
  assert_float_equal(at(find(j, "gauges", "conns", 0), "growth"), 3, 1e-9);
  assert_float_equal(at(find(j, "gauges", "conns", 0), "lives"), 4, 0);
  cJSON_Delete(j);
}

/* torn.jsonl holds hourly.jsonl's 7 lines plus 6 malformed ones: non-JSON,
 * no "gen", a bad "ts", an array, a string footprint and a torn last line
 * (04:30, which would stretch the period if it counted).  Everything but
 * the file name and line counts must match hourly.jsonl. */
static void report_skips_malformed_lines_and_keeps_figures(void** state) {
  (void)state;
  cJSON* torn = json_of(RUN("--json", fx("torn.jsonl")));
  cJSON* good = json_of(RUN("--json", fx("hourly.jsonl")));
  assert_float_equal(at(torn, "skipped"), 6, 0);
  assert_float_equal(at(torn, "lines"), 13, 0);
  assert_float_equal(at(good, "lines"), 7, 0);
  const char* drop[] = {"files", "lines", "skipped"};
  for (int i = 0; i < 3; i++) {
    cJSON_DeleteItemFromObject(torn, drop[i]);
    cJSON_DeleteItemFromObject(good, drop[i]);
  }
  assert_true(cJSON_Compare(torn, good, 1));
  cJSON_Delete(torn);
  cJSON_Delete(good);
  assert_int_equal(RUN(fx("torn.jsonl")), 0);
  assert_contains(out, "skipped 6 malformed lines");
}

/* A pool log with lines whose slot memsup cannot have written (negative,
 * fractional, a string, past 1023): each is skipped as malformed, and the
 * figures are pool.jsonl's. */
static void report_skips_lines_with_a_bad_slot(void** state) {
  char bad[128], cmd[8400];
  (void)state;
  snprintf(bad, sizeof(bad), "%s/badslot.jsonl", dir);
  snprintf(cmd, sizeof(cmd),
           "cp '%s' '%s' && printf '%%s\n' "
           "'{\"ts\":\"2026-11-21T00:00:20.000Z\",\"event\":\"crash\",\"slot\":-1,\"pid\":9,\"gen\":1,\"exit_code\":1,\"signal\":null,\"uptime_s\":1}' "
           "'{\"ts\":\"2026-11-21T00:00:20.000Z\",\"event\":\"crash\",\"slot\":1.5,\"pid\":9,\"gen\":1,\"exit_code\":1,\"signal\":null,\"uptime_s\":1}' "
           "'{\"ts\":\"2026-11-21T00:00:20.000Z\",\"event\":\"crash\",\"slot\":\"0\",\"pid\":9,\"gen\":1,\"exit_code\":1,\"signal\":null,\"uptime_s\":1}' "
           "'{\"ts\":\"2026-11-21T00:00:20.000Z\",\"event\":\"crash\",\"slot\":1024,\"pid\":9,\"gen\":1,\"exit_code\":1,\"signal\":null,\"uptime_s\":1}' "
           ">> '%s'",
           fx("pool.jsonl"), bad, bad);
  assert_int_equal(system(cmd), 0);
  cJSON* a = json_of(RUN("--json", bad));
  cJSON* b = json_of(RUN("--json", fx("pool.jsonl")));
  assert_float_equal(at(a, "skipped"), 4, 0);
  const char* drop[] = {"files", "lines", "skipped"};
  for (int i = 0; i < 3; i++) {
    cJSON_DeleteItemFromObject(a, drop[i]);
    cJSON_DeleteItemFromObject(b, drop[i]);
  }
  assert_true(cJSON_Compare(a, b, 1));
  cJSON_Delete(a);
  cJSON_Delete(b);
}

/* Lines may come in any order: hourly.jsonl read backwards gives the same
 * figures (restart intervals and lives need the restarts sorted). */
static void report_reads_lines_in_any_order(void** state) {
  char rev[128], cmd[8400];
  (void)state;
  snprintf(rev, sizeof(rev), "%s/reversed.jsonl", dir);
  snprintf(cmd, sizeof(cmd), "tac '%s' > '%s'", fx("hourly.jsonl"), rev);
  assert_int_equal(system(cmd), 0);
  cJSON* a = json_of(RUN("--json", rev));
  cJSON* b = json_of(RUN("--json", fx("hourly.jsonl")));
  cJSON_DeleteItemFromObject(a, "files");
  cJSON_DeleteItemFromObject(b, "files");
  assert_true(cJSON_Compare(a, b, 1));
  cJSON_Delete(a);
  cJSON_Delete(b);
}

static void report_text_answers_the_questions(void** state) {
  (void)state;
  assert_int_equal(RUN(fx("hourly.jsonl")), 0);
  assert_contains(out, "4 (limit 4)");
  assert_contains(out, "crashes 1");
  assert_contains(out, "4 in 4.0 h, one every 60.0 min (1.00 per hour)");
  assert_null(strstr(out, "per day"));
  assert_contains(out, "mean 3600.0 s, median 3600.0 s");
  assert_contains(out, "median 2.25 MiB/min over 4 lives");
  assert_contains(out, "before 137.0 MiB, after 5.0 MiB");
  assert_contains(out, "growth 2, allocator-retention 1");
  assert_contains(out, "[heap]");
  assert_contains(out, "cache_entries");
  assert_contains(out, "restarts that did not help: 1");
  assert_null(strstr(out, "skipped"));
}

/* xmllint accepts path and it has exactly restarts class="restart". */
static void assert_svg(const char* path, int restarts, int crashes) {
  char cmd[8300], buf[1 << 16];
  FILE* f;
  snprintf(cmd, sizeof(cmd), "xmllint --noout '%s'", path);
  assert_int_equal(system(cmd), 0);
  assert_non_null(f = fopen(path, "r"));
  slurp(f, buf, sizeof(buf));
  assert_int_equal(count(buf, "class=\"restart\""), restarts);
  assert_int_equal(count(buf, "class=\"crash\""), crashes);
  assert_int_equal(count(buf, "class=\"limit\""), 1);
  assert_contains(buf, "MiB</text>");
}

static void report_svg_is_xml_with_a_marker_per_restart(void** state) {
  char svg[128], link[128], cmd[8400];
  (void)state;
  snprintf(svg, sizeof(svg), "%s/hourly.svg", dir);
  assert_int_equal(RUN("--svg", svg, fx("hourly.jsonl")), 0);
  assert_svg(svg, 4, 1);
  assert_int_equal(
      RUN("--svg", svg, fx("fixed_restarts.jsonl"), fx("fixed_samples.jsonl")),
      0);
  assert_svg(svg, 1, 0);
  /* A file name with XML's special characters ends up in the title. */
  snprintf(link, sizeof(link), "%s/a&b<c>\".jsonl", dir);
  snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", fx("hourly.jsonl"), link);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(RUN("--svg", svg, link), 0);
  assert_svg(svg, 4, 1);
}

/* The lowest y (the highest value) of the footprint polylines in svg. */
static double top_of_footprint(const char* svg) {
  double top = 1e9;
  for (const char* p = svg; (p = strstr(p, "class=\"footprint\"")) != NULL;) {
    p = strstr(p, "points=\"") + 8;
    double x, y;
    int n;
    while (sscanf(p, "%lf,%lf %n", &x, &y, &n) == 2) {
      if (y < top) top = y;
      p += n;
    }
  }
  return top;
}

/* A week of 1 s samples (604800 lines, a life every 10 min that climbs
 * to the 40 MiB limit: 1008 restarts), one 1 s spike to 100 MiB in the
 * middle of the week.  Drawn point by point that was 14.5 MB; min/max
 * downsampling keeps it under 512 KiB, and keeps the spike (it is the
 * highest point drawn, above the limit line).  Restarts are bars per
 * round interval, not 1008 markers. */
static void report_svg_of_a_week_is_small_and_keeps_spikes(void** state) {
  char log[128], svg[128];
  static char buf[1 << 20];
  (void)state;
  snprintf(log, sizeof(log), "%s/week.jsonl", dir);
  snprintf(svg, sizeof(svg), "%s/week.svg", dir);
  FILE* f = fopen(log, "w");
  assert_non_null(f);
  for (int i = 0; i < 7 * 86400; i++) {
    int life = i / 600, k = i % 600, d = i / 86400, s = i % 86400;
    double fp = (1 + 39.0 * k / 599) * MIB;
    if (i == 3 * 86400 + 1234) fp = 100 * MIB;
    fprintf(f,
            "{\"ts\":\"2026-11-%02dT%02d:%02d:%02d.000Z\",\"event\":"
            "\"sample\",\"pid\":%d,\"gen\":%d,\"footprint\":%.0f,"
            "\"rss\":%.0f,\"limit\":%.0f}\n",
            1 + d, s / 3600, s / 60 % 60, s % 60, 1000 + life, life + 1, fp,
            fp + 2 * MIB, 40 * MIB);
    if (k == 599 && i + 1 < 7 * 86400)
      fprintf(f,
              "{\"ts\":\"2026-11-%02dT%02d:%02d:%02d.400Z\",\"event\":"
              "\"restart\",\"pid\":%d,\"gen\":%d,\"reason\":\"limit\","
              "\"old_pid\":%d,\"new_pid\":%d,\"uptime_s\":600,"
              "\"before\":{\"footprint\":%.0f},\"after\":{\"footprint\":"
              "%.0f}}\n",
              1 + d, s / 3600, s / 60 % 60, s % 60, 1001 + life, life + 2,
              1000 + life, 1001 + life, 40.1 * MIB, 1 * MIB);
  }
  assert_int_equal(fclose(f), 0);
  assert_int_equal(RUN("--svg", svg, log), 0);
  assert_non_null(f = fopen(svg, "r"));
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long size = ftell(f);
  slurp(f, buf, sizeof(buf));
  if (size >= 512 * 1024) fail_msg("SVG of a week is %ld bytes", size);
  assert_int_equal(count(buf, "class=\"restart\""), 0);
  assert_true(count(buf, "class=\"restart-rate\"") > 100);
  assert_contains(buf, "max 6/hour</text>");
  const char* lim = strstr(buf, "class=\"limit\"");
  double y1;
  assert_non_null(lim);
  assert_int_equal(sscanf(strstr(lim, "y1=\"") + 4, "%lf", &y1), 1);
  /* The axis tops 105 MiB: the spike sits ~60% above the limit's line. */
  assert_true(top_of_footprint(buf) < y1 - 100);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "xmllint --noout --huge '%s'", svg);
  assert_int_equal(system(cmd), 0);
  unlink(log);
}

/* A life's line ends at the value its restart saw: pid 300's samples stop
 * at 12 MiB (= the limit) 60 s before the restart, whose before is 14 MiB,
 * so its line must end above the limit's line, at the restart's time (the
 * restart marker's x).  Dry-run restarts and purges get markers of their
 * own, not restart markers. */
static void report_svg_draws_lives_up_to_the_restart(void** state) {
  char svg[128], log[128];
  static char buf[1 << 16];
  (void)state;
  snprintf(svg, sizeof(svg), "%s/fixed.svg", dir);
  assert_int_equal(
      RUN("--svg", svg, fx("fixed_restarts.jsonl"), fx("fixed_samples.jsonl")),
      0);
  FILE* f = fopen(svg, "r");
  assert_non_null(f);
  slurp(f, buf, sizeof(buf));
  double limit_y, x, y, last_x = 0, last_y = 0, marker_x;
  const char* lim = strstr(buf, "class=\"limit\"");
  assert_non_null(lim);
  assert_int_equal(sscanf(strstr(lim, "y1=\"") + 4, "%lf", &limit_y), 1);
  const char* p = strstr(buf, "class=\"footprint\"");
  assert_non_null(p);
  p = strstr(p, "points=\"") + 8;
  int n;
  while (sscanf(p, "%lf,%lf %n", &x, &y, &n) == 2) {
    last_x = x;
    last_y = y;
    p += n;
  }
  assert_true(last_y < limit_y - 5);
  const char* m = strstr(buf, "class=\"restart\" d=\"M");
  assert_non_null(m);
  assert_int_equal(sscanf(m + strlen("class=\"restart\" d=\"M"), "%lf",
                          &marker_x), 1);
  assert_float_equal(last_x, marker_x, 0.05);

  snprintf(log, sizeof(log), "%s/dry.jsonl", dir);
  assert_non_null(f = fopen(log, "w"));
  fputs("{\"ts\":\"2026-11-21T00:00:00.000Z\",\"event\":\"sample\","
        "\"pid\":1,\"gen\":1,\"footprint\":1048576,\"rss\":2097152}\n"
        "{\"ts\":\"2026-11-21T00:00:10.000Z\",\"event\":\"would-restart\","
        "\"pid\":1,\"gen\":1,\"reason\":\"limit\",\"old_pid\":1,"
        "\"uptime_s\":10,\"before\":{\"footprint\":9000000}}\n"
        "{\"ts\":\"2026-11-21T00:00:20.000Z\",\"event\":\"purge\","
        "\"pid\":1,\"gen\":1,\"freed\":1000}\n"
        "{\"ts\":\"2026-11-21T00:00:25.000Z\",\"event\":\"purge\","
        "\"pid\":1,\"gen\":1,\"freed\":1000}\n",
        f);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(RUN("--svg", svg, log), 0);
  assert_non_null(f = fopen(svg, "r"));
  slurp(f, buf, sizeof(buf));
  assert_int_equal(count(buf, "class=\"restart\""), 0);
  assert_int_equal(count(buf, "class=\"dry-run\""), 1);
  assert_int_equal(count(buf, "class=\"purge\""), 2);
  assert_int_equal(count(buf, "class=\"crash\""), 0);
}

/* --html: one page with the chart inline (no XML declaration inside) and
 * the text summary. */
static void report_html_has_the_chart_and_the_summary(void** state) {
  char html[128];
  static char buf[1 << 16];
  (void)state;
  snprintf(html, sizeof(html), "%s/hourly.html", dir);
  assert_int_equal(RUN("--html", html, fx("hourly.jsonl")), 0);
  FILE* f = fopen(html, "r");
  assert_non_null(f);
  slurp(f, buf, sizeof(buf));
  assert_true(strncmp(buf, "<!DOCTYPE html>", 15) == 0);
  assert_int_equal(count(buf, "<svg "), 1);
  assert_int_equal(count(buf, "<?xml"), 0);
  assert_int_equal(count(buf, "class=\"restart\""), 4);
  assert_contains(buf, "restart rate      4 in 4.0 h");
  assert_int_equal(RUN("--html"), 100);
  assert_contains(err, "--html: needs a FILE");
}

/* A figure under one byte (here 1e-317, a subnormal double) used to make
 * the axis step 0 and the SVG writer loop for ever. */
static void report_svg_of_subnormal_figures_ends(void** state) {
  char log[128], svg[128], cmd[300];
  (void)state;
  snprintf(log, sizeof(log), "%s/tiny.jsonl", dir);
  snprintf(svg, sizeof(svg), "%s/tiny.svg", dir);
  FILE* f = fopen(log, "w");
  assert_non_null(f);
  fputs("{\"ts\":\"2026-11-21T00:00:00.000Z\",\"event\":\"sample\","
        "\"pid\":1,\"gen\":1,\"footprint\":1e-317,\"rss\":0}\n", f);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(RUN("--svg", svg, log), 0);
  snprintf(cmd, sizeof(cmd), "xmllint --noout '%s'", svg);
  assert_int_equal(system(cmd), 0);
}

/* A: cache_entries +5000 per life (20000 / 4), conns +0.75; [heap]
 * 250/3 MiB and anon 30 MiB per restart.  B: life 300 cache 100-100 = 0,
 * conns 9-5 = 4; life 301 0 and 0: per life cache 0, conns 2; anon 4 MiB.
 * So cache_entries and [heap] stopped; conns and anon (4 > 5% of 30) did
 * not. */
static void report_compare_names_the_gauge_that_stopped(void** state) {
  char b[8300];
  (void)state;
  snprintf(b, sizeof(b), "%s,%s", fx("fixed_restarts.jsonl"),
           fx("fixed_samples.jsonl"));
  cJSON* j = json_of(RUN("--json", "--compare", fx("hourly.jsonl"), b));
  assert_float_equal(at(j, "a.growth_mib_per_min"), 2.25, 1e-9);
  assert_float_equal(at(j, "b.growth_mib_per_min"), 2.0, 1e-6);
  assert_float_equal(at(j, "a.restarts_per_hour"), 1.0, 1e-9);
  assert_float_equal(at(j, "b.restarts_per_hour"), 0.5, 1e-9);
  const cJSON* c = find(j, "stopped_growing", "cache_entries", 0);
  assert_float_equal(at(c, "a"), 5000, 1e-9);
  assert_float_equal(at(c, "b"), 0, 1e-9);
  assert_true(cJSON_IsNull(
      cJSON_GetObjectItem(find(j, "stopped_growing", "[heap]", 0), "b")));
  assert_float_equal(at(find(j, "still_growing", "conns", 0), "b"), 2, 1e-9);
  assert_float_equal(at(find(j, "still_growing", "anon", 0), "b"), 4 * MIB,
                     0.5);
  assert_int_equal(
      cJSON_GetArraySize(cJSON_GetObjectItem(j, "stopped_growing")), 2);
  cJSON_Delete(j);
  assert_int_equal(RUN("--compare", fx("hourly.jsonl"), b), 0);
  assert_contains(out, "gauge cache_entries: +5000 per life in A, +0 in B");
  assert_contains(out, "1.00         0.50");
  assert_contains(
      out,
      "mapping [heap]: 83.3 MiB private dirty per restart in A, not seen in B");
}

static void report_errors_have_exit_codes_and_messages(void** state) {
  char svg[128];
  (void)state;
  assert_int_equal(RUN("--json"), 100);
  assert_contains(err, "no log files");
  assert_int_equal(RUN("--bogus", fx("hourly.jsonl")), 100);
  assert_contains(err, "--bogus: unknown option");
  assert_int_equal(RUN("--compare", fx("hourly.jsonl")), 100);
  assert_int_equal(RUN("--svg"), 100);
  assert_int_equal(RUN(fx("hourly.jsonl"), "/nonexistent/x.jsonl"), 111);
  assert_string_equal(
      err,
      "memsup report: open /nonexistent/x.jsonl: No such file or directory\n");
  assert_string_equal(out, "");
  assert_int_equal(RUN("--compare", fx("hourly.jsonl"), "/nonexistent/b"), 111);
  assert_int_equal(RUN(dir), 111); /* a directory opens but cannot be read */
  assert_contains(err, "Is a directory");
  snprintf(svg, sizeof(svg), "%s/no/such/dir.svg", dir);
  assert_int_equal(RUN("--svg", svg, fx("hourly.jsonl")), 111);
  assert_int_equal(RUN("--help"), 0);
  assert_contains(out, "stopped_growing");
}

/* Figures memsup cannot have written are clamped into [0, 2^64) and
 * counted: before.footprint 9.5e19 twice -> the largest double under 2^64
 * (the old report cast it to an integer, undefined, and printed "0 B");
 * rss -1 and 8 MiB -> median (0 + 8) / 2 = 4 MiB; [heap] sums two clamped
 * figures, which the text must still print as a size. */
static void report_clamps_out_of_range_figures_and_says_so(void** state) {
  (void)state;
  cJSON* j = json_of(RUN("--json", fx("out_of_range.jsonl")));
  assert_float_equal(at(j, "clamped"), 7, 0);
  assert_float_equal(at(j, "skipped"), 0, 0);
  assert_float_equal(at(j, "restarts.total"), 2, 0);
  assert_true(at(j, "before.footprint") == MS_REPORT_BYTES_MAX);
  assert_float_equal(at(j, "before.rss"), 4 * MIB, 0.5);
  assert_true(at(find(j, "mappings", "[heap]", 0), "private_dirty") ==
              2 * MS_REPORT_BYTES_MAX);
  cJSON_Delete(j);
  assert_int_equal(RUN(fx("out_of_range.jsonl")), 0);
  assert_contains(out, "4 lines (7 out-of-range values clamped to 0..2^64 B)");
  assert_contains(out, "before 16777216.0 TiB, after 4.0 MiB");
  assert_contains(out, "[heap]                         16777216.0 TiB");
  /* In-range logs say nothing about it. */
  assert_int_equal(RUN(fx("hourly.jsonl")), 0);
  assert_null(strstr(out, "out-of-range"));
}

static void clamp_bytes_keeps_range_and_counts_changes(void** state) {
  int n = 0;
  (void)state;
  assert_true(ms_report_clamp_bytes(-1, &n) == 0);
  assert_true(ms_report_clamp_bytes(9.5e19, &n) == MS_REPORT_BYTES_MAX);
  assert_true(ms_report_clamp_bytes(18446744073709551616.0, &n) ==
              MS_REPORT_BYTES_MAX);
  assert_int_equal(n, 3);
  assert_true(ms_report_clamp_bytes(0, &n) == 0);
  assert_true(ms_report_clamp_bytes(MS_REPORT_BYTES_MAX, &n) ==
              MS_REPORT_BYTES_MAX);
  assert_true(ms_report_clamp_bytes(123456789, &n) == 123456789);
  assert_true(isnan(ms_report_clamp_bytes(NAN, &n)));
  assert_int_equal(n, 3);
  /* The largest accepted figure converts to an integer exactly. */
  assert_true((unsigned long long)MS_REPORT_BYTES_MAX ==
              18446744073709549568ULL);
}

/* 20,000 keys of each kind from an empty table: it grows (capacity a power
 * of two, never more than half full) and finds every key, and only those. */
static void table_finds_every_key_after_growing(void** state) {
  enum { N = 20000 };
  static char names[N][16];
  ms_table_t t = {0};
  (void)state;
  assert_null(ms_table_get_num(&t, 1));
  assert_null(ms_table_get_str(&t, "x"));
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof(names[i]), "map-%d", i);
    assert_int_equal(ms_table_put_num(&t, 1000 + i, (size_t)i), 1);
    assert_int_equal(ms_table_put_str(&t, names[i], (size_t)(N + i)), 1);
    assert_true(2 * t.n <= t.cap);
  }
  assert_int_equal(t.n, 2 * N);
  assert_int_equal(t.cap & (t.cap - 1), 0);
  for (int i = 0; i < N; i++) {
    char copy[16];
    snprintf(copy, sizeof(copy), "map-%d", i); /* equal, not the same */
    assert_non_null(ms_table_get_num(&t, 1000 + i));
    assert_int_equal(*ms_table_get_num(&t, 1000 + i), i);
    assert_non_null(ms_table_get_str(&t, copy));
    assert_int_equal(*ms_table_get_str(&t, copy), N + i);
  }
  assert_null(ms_table_get_num(&t, 999));
  assert_null(ms_table_get_num(&t, 1000 + N));
  assert_null(ms_table_get_str(&t, "map-"));
  assert_null(ms_table_get_str(&t, "map-20000"));
  /* A key put again keeps its first value. */
  assert_int_equal(ms_table_put_num(&t, 1000, 7), 0);
  assert_int_equal(*ms_table_get_num(&t, 1000), 0);
  assert_int_equal(ms_table_put_str(&t, "map-5", 7), 0);
  assert_int_equal(*ms_table_get_str(&t, "map-5"), N + 5);
  assert_int_equal(t.n, 2 * N);
  ms_table_free(&t);
  assert_null(t.slots);
  assert_null(ms_table_get_num(&t, 1000));
}

/* Every key with the same hash (42, and 0, which the table must not take
 * for "empty"): keys are told apart by value, across growth, and a string
 * key never matches an integer key. */
static void table_tells_colliding_keys_apart(void** state) {
  enum { N = 300 };
  static char names[N][16];
  ms_table_t t = {0};
  (void)state;
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof(names[i]), "%d", i);
    assert_int_equal(ms_table_put(&t, 42, names[i], 0, (size_t)i), 1);
    assert_int_equal(ms_table_put(&t, 42, NULL, i, (size_t)(N + i)), 1);
    assert_int_equal(ms_table_put(&t, 0, NULL, i, (size_t)(2 * N + i)), 1);
  }
  assert_int_equal(t.n, 3 * N);
  for (int i = 0; i < N; i++) {
    char copy[16];
    snprintf(copy, sizeof(copy), "%d", i);
    assert_int_equal(*ms_table_get(&t, 42, copy, 0), i);
    assert_int_equal(*ms_table_get(&t, 42, NULL, i), N + i);
    assert_int_equal(*ms_table_get(&t, 0, NULL, i), 2 * N + i);
    assert_int_equal(ms_table_put(&t, 42, copy, 0, 1), 0);
  }
  assert_null(ms_table_get(&t, 42, "300", 0));
  assert_null(ms_table_get(&t, 42, NULL, N));
  assert_null(ms_table_get(&t, 43, "1", 0)); /* same key, other hash */
  assert_int_equal(t.n, 3 * N);
  ms_table_free(&t);
}

/* 3,000 lives of distinct pids (p -> p+1, each restart 60 s after the last,
 * before.footprint (p % 7 + 1) MiB after a 1-minute life from 0): every
 * life is found by pid and its rate is its own footprint in MiB/min, and
 * each of 3,000 mapping names is tallied once. */
static void report_keeps_every_one_of_many_pids_and_names(void** state) {
  enum { N = 3000 };
  char path[128];
  (void)state;
  snprintf(path, sizeof(path), "%s/many.jsonl", dir);
  FILE* f = fopen(path, "w");
  assert_non_null(f);
  for (int i = 0; i < N; i++) {
    int p = 10000 + i;
    fprintf(f,
            "{\"ts\":\"2026-11-%02dT%02d:%02d:00.000Z\",\"event\":\"restart\","
            "\"pid\":%d,\"gen\":%d,\"reason\":\"limit\",\"old_pid\":%d,"
            "\"new_pid\":%d,\"uptime_s\":60,\"before\":{\"footprint\":%d},"
            "\"evidence\":{\"mappings\":[{\"name\":\"/lib/m%d.so\","
            "\"private_dirty\":%d}]}}\n",
            1 + i / 1440, i / 60 % 24, i % 60, p + 1, i + 2, p, p + 1,
            (p % 7 + 1) * (int)MIB, i, i + 1);
  }
  assert_int_equal(fclose(f), 0);
  cJSON* j = json_of(RUN("--json", path));
  cJSON* g = cJSON_GetObjectItemCaseSensitive(j, "growth_mib_per_min");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(g, "lives")), N);
  for (int p = 10000; p < 10000 + N; p += 499)
    assert_float_equal(at(find(g, "lives", NULL, p), "rate"), (p % 7 + 1), 1e-9);
  /* Top 5 mappings: the largest private dirty, N down to N - 4. */
  const cJSON* m = cJSON_GetObjectItem(j, "mappings");
  assert_int_equal(cJSON_GetArraySize(m), 5);
  assert_string_equal(cJSON_GetArrayItem(m, 0)->child->valuestring,
                      "/lib/m2999.so");
  assert_float_equal(at(find(j, "mappings", "/lib/m2995.so", 0),
                        "private_dirty"), N - 4, 0);
  cJSON_Delete(j);
}

/* One life with 20 gauges (past the 8 that are searched directly, so they
 * go through a table): a first sample with gi = i (and a repeated g0 = 50,
 * which must not win over the first g0) and the ending restart with gi =
 * 100 + i.  Every gauge grew 100; compared with itself, all 20 are still
 * growing. */
static void report_gauges_of_a_big_object_are_matched_by_name(void** state) {
  char log[128];
  (void)state;
  snprintf(log, sizeof(log), "%s/gauges.jsonl", dir);
  FILE* f = fopen(log, "w");
  assert_non_null(f);
  fputs("{\"ts\":\"2026-11-21T00:00:00.000Z\",\"event\":\"sample\","
        "\"pid\":7,\"gen\":1,\"footprint\":1,\"rss\":1,\"gauges\":{",
        f);
  for (int i = 19; i >= 0; i--) fprintf(f, "\"g%d\":%d,", i, i);
  fputs("\"g0\":50}}\n", f);
  fputs("{\"ts\":\"2026-11-21T00:01:00.000Z\",\"event\":\"restart\","
        "\"pid\":8,\"gen\":2,\"reason\":\"limit\",\"old_pid\":7,"
        "\"new_pid\":8,\"uptime_s\":60,\"before\":{\"footprint\":2,"
        "\"gauges\":{",
        f);
  for (int i = 0; i < 20; i++) fprintf(f, "%s\"g%d\":%d", i ? "," : "", i, 100 + i);
  fputs("}}}\n", f);
  assert_int_equal(fclose(f), 0);
  cJSON* j = json_of(RUN("--json", log));
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "gauges")), 5);
  assert_float_equal(at(find(j, "gauges", "g0", 0), "growth"), 100, 0);
  assert_float_equal(at(find(j, "gauges", "g12", 0), "growth"), 100, 0);
  cJSON_Delete(j);
  j = json_of(RUN("--json", "--compare", log, log));
  const cJSON* still = cJSON_GetObjectItem(j, "still_growing");
  assert_int_equal(cJSON_GetArraySize(still), 20);
  assert_float_equal(at(find(j, "still_growing", "g19", 0), "a"), 100, 0);
  assert_float_equal(at(find(j, "still_growing", "g19", 0), "b"), 100, 0);
  cJSON_Delete(j);
}

/* A cache service like the demo's: three lives of 10 s, one sample a
 * second.  Within a life footprint = 4 + 4k MiB, cache.entries = 1000k
 * (falls back to 0 at each restart: r = 1) and requests = 70000 * (10
 * life + k) + 13 k^2 (carried on by the state, so it keeps climbing while
 * the footprint falls: r well under 1), and a pool.idle gauge that
 * shrinks.  requests grew by far more than cache.entries; the cache must
 * still come first, the shrinking gauge not at all. */
static void write_cache_log(const char* path, int file_rows) {
  FILE* f = fopen(path, "w");
  assert_non_null(f);
  for (int life = 0; life < 3; life++) {
    for (int k = 0; k < 10; k++)
      fprintf(f,
              "{\"ts\":\"2026-11-21T00:00:%02d.000Z\",\"event\":\"sample\","
              "\"pid\":%d,\"gen\":%d,\"footprint\":%.0f,\"rss\":%.0f,"
              "\"gauges\":{\"requests\":%d,\"cache.entries\":%d,"
              "\"pool.idle\":%d,\"cache.bytes\":%d},\"limit\":%.0f}\n",
              life * 10 + k, 10 + life, life + 1, (4 + 4 * k) * MIB,
              (6 + 4 * k) * MIB, 70000 * (10 * life + k) + 13 * k * k,
              1000 * k, 50 - k, 4096 * 1024 * k, 40 * MIB);
    if (life == 2) break;
    fprintf(f,
            "{\"ts\":\"2026-11-21T00:00:%02d.500Z\",\"event\":\"restart\","
            "\"pid\":%d,\"gen\":%d,\"reason\":\"limit\",\"old_pid\":%d,"
            "\"new_pid\":%d,\"uptime_s\":10,\"limit\":%.0f,"
            "\"before\":{\"footprint\":%.0f,\"rss\":%.0f},"
            "\"evidence\":{\"classification\":\"unbounded-cache\","
            "\"mappings\":[{\"name\":\"\",\"class\":\"anon\","
            "\"private_dirty\":%.0f}%s],"
            "\"grew\":[{\"name\":\"\",\"class\":\"anon\",\"growth\":%.0f},"
            "{\"name\":\"[heap]\",\"growth\":-4096},{\"bogus\":1}],"
            "\"processes\":[{\"pid\":9,\"command\":\"kvcache\","
            "\"footprint\":%.0f}]}}\n",
            life * 10 + 9, 11 + life, life + 2, 10 + life, 11 + life, 40 * MIB,
            40 * MIB, 42 * MIB, 36 * MIB,
            file_rows ? ",{\"name\":\"/usr/lib/libcrypto.so.3\",\"class\":"
                        "\"file\",\"private_dirty\":413696}"
                      : "",
            32 * MIB, 40 * MIB);
  }
  assert_int_equal(fclose(f), 0);
}

static void report_ranks_gauges_by_how_they_track_the_footprint(void** state) {
  char log[128];
  (void)state;
  snprintf(log, sizeof(log), "%s/cache.jsonl", dir);
  write_cache_log(log, 1);
  cJSON* j = json_of(RUN("--json", log));
  const cJSON* g = cJSON_GetObjectItem(j, "gauges");
  /* cache.entries and cache.bytes both track it exactly (r = 1); the
   * tie goes to the bigger growth, then the name. */
  assert_int_equal(cJSON_GetArraySize(g), 3);
  const char* first = cJSON_GetArrayItem(g, 0)->child->valuestring;
  assert_true(strncmp(first, "cache.", 6) == 0);
  assert_float_equal(at(cJSON_GetArrayItem(g, 0), "r"), 1.0, 1e-6);
  assert_float_equal(at(cJSON_GetArrayItem(g, 1), "r"), 1.0, 1e-6);
  assert_string_equal(cJSON_GetArrayItem(g, 2)->child->valuestring,
                      "requests");
  double r = at(cJSON_GetArrayItem(g, 2), "r");
  assert_true(r < 0.5);
  /* requests grew more than cache.entries did. */
  assert_true(at(find(j, "gauges", "requests", 0), "growth") >
              at(find(j, "gauges", "cache.entries", 0), "growth"));
  /* Regions that grew and processes are read when present; a row
   * without a name is skipped, a region that shrank is kept as such. */
  assert_float_equal(at(find(j, "grew", "", 0), "growth"), 64 * MIB, 0);
  assert_float_equal(at(find(j, "grew", "[heap]", 0), "growth"), -8192, 0);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "grew")), 2);
  assert_float_equal(at(find(j, "processes", "kvcache", 0), "footprint"),
                     80 * MIB, 0);
  assert_float_equal(at(j, "classification.unbounded-cache"), 2, 0);
  /* The library's relocations are not among the mappings that grew. */
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "mappings")), 1);
  cJSON_Delete(j);

  assert_int_equal(RUN(log), 0);
  /* A 29 s log states its rate over 29 s, not per day. */
  assert_contains(out, "restart rate      2 in 29.0 s, one every 14.5 s\n");
  assert_null(strstr(out, "per day"));
  assert_null(strstr(out, "per hour"));
  assert_null(strstr(out, "pool.idle"));
  assert_contains(out, "unbounded-cache 2");
  /* Human units: a count in k, a bytes gauge in MiB. */
  assert_contains(out, "cache.entries                  r  1.00  +27.0k over 3 lives");
  assert_contains(out, "cache.bytes                    r  1.00  +108.0 MiB over 3 lives");
  assert_contains(out, "requests ");
  assert_true(strstr(out, "cache.entries") < strstr(out, "requests "));
  assert_contains(out, "kvcache");
  assert_contains(out, "regions that grew");
  assert_null(strstr(out, "libcrypto"));
}

/* The same service before (with libcrypto's fixed pages) and after a fix:
 * the library does not show up in --compare. */
static void report_compare_ignores_fixed_library_pages(void** state) {
  char a[128], b[128];
  (void)state;
  snprintf(a, sizeof(a), "%s/cache_a.jsonl", dir);
  snprintf(b, sizeof(b), "%s/cache_b.jsonl", dir);
  write_cache_log(a, 1);
  write_cache_log(b, 1);
  assert_int_equal(RUN("--compare", a, b), 0);
  assert_null(strstr(out, "libcrypto"));
  assert_contains(out, "region (anonymous): 32.0 MiB grown per restart in A");
}

/* The per-slot figures of pool.jsonl, worked out in the header. */
static void report_pool_counts_restarts_per_slot(void** state) {
  (void)state;
  cJSON* j = json_of(RUN("--json", fx("pool.jsonl")));
  const cJSON* slots = cJSON_GetObjectItemCaseSensitive(j, "slots");
  assert_int_equal(cJSON_GetArraySize(slots), 2);
  const cJSON* s0 = cJSON_GetArrayItem(slots, 0);
  const cJSON* s1 = cJSON_GetArrayItem(slots, 1);
  assert_float_equal(at(s0, "slot"), 0, 0);
  assert_float_equal(at(s0, "restarts"), 2, 0);
  assert_float_equal(at(s0, "early"), 1, 0);
  assert_float_equal(at(s0, "waits"), 0, 0);
  assert_float_equal(at(s0, "crashes"), 1, 0);
  assert_float_equal(at(s0, "life_s"), 55, 1e-9);
  assert_float_equal(at(s0, "interval_s"), 50, 1e-6);
  assert_float_equal(at(s0, "downtime_ms"), 45, 1e-9);
  assert_float_equal(at(s0, "growth_mib_per_min"), (60 + 67.2) / 2, 1e-6);
  assert_float_equal(at(s0, "lives"), 2, 0);
  assert_float_equal(at(s1, "slot"), 1, 0);
  assert_float_equal(at(s1, "restarts"), 2, 0);
  assert_float_equal(at(s1, "early"), 0, 0);
  assert_float_equal(at(s1, "waits"), 1, 0);
  assert_float_equal(at(s1, "waited"), 1, 0);
  assert_float_equal(at(s1, "waited_s"), 0.03, 1e-9);
  assert_float_equal(at(s1, "crashes"), 0, 0);
  assert_float_equal(at(s1, "life_s"), 60.5, 1e-9);
  assert_float_equal(at(s1, "downtime_ms"), 37.5, 1e-9);
  assert_float_equal(at(s1, "growth_mib_per_min"), 60, 1e-6);
  assert_float_equal(at(s1, "lives"), 3, 0);
  /* Both reasons are memory restarts; the pool adds the slots up. */
  assert_float_equal(at(j, "restarts.total"), 4, 0);
  assert_float_equal(at(j, "restarts.by_reason.limit"), 3, 0);
  assert_float_equal(at(j, "restarts.by_reason.early"), 1, 0);
  assert_float_equal(at(j, "pool.slots"), 2, 0);
  assert_float_equal(at(j, "pool.restarts"), 4, 0);
  assert_float_equal(at(j, "pool.early"), 1, 0);
  assert_float_equal(at(j, "pool.waits"), 1, 0);
  assert_float_equal(at(j, "pool.crashes"), 1, 0);
  assert_float_equal(at(j, "pool.downtime_ms"), 42.5, 1e-9);
  assert_float_equal(at(j, "pool.lives"), 5, 0);
  /* Slot 1 was decided at slot 0's ready: one down at a time. */
  assert_float_equal(at(j, "pool.max_down"), 1, 0);
  assert_float_equal(at(j, "pool.overlaps"), 0, 0);
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetObjectItem(j, "pool"), "max_down_at")
          ->valuestring,
      "2026-11-21T00:01:00.000Z");
  cJSON_Delete(j);
  /* A log without slots has neither key: its report is what it was. */
  j = json_of(RUN("--json", fx("hourly.jsonl")));
  assert_null(cJSON_GetObjectItem(j, "slots"));
  assert_null(cJSON_GetObjectItem(j, "pool"));
  cJSON_Delete(j);
}

/* Slot 1's last worker got pid 200, slot 0's first: keyed by pid alone,
 * the two lives would be one (6 samples, 4 lives, a slope across both). */
static void report_pool_keeps_lives_of_slots_apart(void** state) {
  (void)state;
  cJSON* j = json_of(RUN("--json", fx("pool.jsonl")));
  const cJSON* g = cJSON_GetObjectItemCaseSensitive(j, "growth_mib_per_min");
  const cJSON *e, *l0 = NULL, *l1 = NULL;
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(g, "lives")), 5);
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(g, "lives")) {
    if (at(e, "pid") != 200) continue;
    if (at(e, "slot") == 0) l0 = e;
    if (at(e, "slot") == 1) l1 = e;
  }
  assert_non_null(l0);
  assert_non_null(l1);
  assert_float_equal(at(l0, "rate"), 60, 1e-6);
  assert_float_equal(at(l0, "samples"), 3, 0);
  assert_float_equal(at(l1, "rate"), 6, 1e-6);
  assert_float_equal(at(l1, "samples"), 3, 0);
  assert_float_equal(at(g, "median"), 60, 1e-6);
  cJSON_Delete(j);
}

/* Writes a pool log of two restarts: slot 0 decided at 00:00:10 and down
 * for 40 ms (downtime_ms), slot 1 decided gap_ms after slot 0's ready
 * (negative: before it). */
static void write_abutting(const char* path, double gap_ms) {
  FILE* f = fopen(path, "w");
  assert_non_null(f);
  double t0 = 1795219210.0; /* 2026-11-21T00:00:10Z */
  for (int k = 0; k < 2; k++)
    fprintf(f,
            "{\"ts\":\"2026-11-21T00:00:2%d.000Z\",\"event\":\"restart\","
            "\"slot\":%d,\"pid\":%d,\"gen\":2,\"reason\":\"limit\","
            "\"decided_unix_s\":%.6f,\"old_pid\":%d,\"new_pid\":%d,"
            "\"uptime_s\":10,\"before\":{\"footprint\":67108864},"
            "\"downtime_ms\":40.0}\n",
            k, k, 20 + k, k ? t0 + 0.040 + gap_ms / 1e3 : t0, 10 + k, 20 + k);
  assert_int_equal(fclose(f), 0);
}

/* pool_ceiling.jsonl: slot 1 was decided 50 ms into slot 0's 105 ms: two
 * down at once, none without the ceiling restart; slot 0's end is an
 * estimate (no SDK).  The lines without a slot are a row of their own. */
static void report_pool_counts_slots_down_at_once(void** state) {
  char log[128];
  (void)state;
  cJSON* j = json_of(RUN("--json", fx("pool_ceiling.jsonl")));
  assert_float_equal(at(j, "pool.slots"), 3, 0);
  assert_float_equal(at(j, "pool.max_down"), 2, 0);
  assert_float_equal(at(j, "pool.max_down_without_ceiling"), 1, 0);
  assert_float_equal(at(j, "pool.overlaps"), 1, 0);
  assert_float_equal(at(j, "pool.ceiling"), 1, 0);
  assert_float_equal(at(j, "pool.down_estimated"), 1, 0);
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetObjectItem(j, "pool"), "max_down_at")
          ->valuestring,
      "2026-11-21T00:00:10.050Z");
  const cJSON* slots = cJSON_GetObjectItemCaseSensitive(j, "slots");
  assert_int_equal(cJSON_GetArraySize(slots), 4);
  assert_true(cJSON_IsNull(
      cJSON_GetObjectItem(cJSON_GetArrayItem(slots, 0), "slot")));
  assert_float_equal(at(cJSON_GetArrayItem(slots, 0), "restarts"), 1, 0);
  assert_float_equal(at(cJSON_GetArrayItem(slots, 1), "down_s"), 0.105, 1e-9);
  assert_float_equal(at(cJSON_GetArrayItem(slots, 1), "down_estimated"), 1, 0);
  assert_float_equal(at(cJSON_GetArrayItem(slots, 2), "ceiling"), 1, 0);
  cJSON_Delete(j);
  /* A restart decided at the other's ready, or within the 1 ms slack of
   * it, is not down with it; 2 ms before it is. */
  snprintf(log, sizeof(log), "%s/abut.jsonl", dir);
  const double gaps[] = {0, -0.5, 5, -2, -30};
  const double want[] = {1, 1, 1, 2, 2};
  for (int i = 0; i < 5; i++) {
    write_abutting(log, gaps[i]);
    j = json_of(RUN("--json", log));
    if (at(j, "pool.max_down") != want[i])
      fail_msg("gap %g ms: max_down %g, not %g", gaps[i],
               at(j, "pool.max_down"), want[i]);
    cJSON_Delete(j);
  }
}

static void report_pool_text_has_a_row_per_slot(void** state) {
  (void)state;
  assert_int_equal(RUN(fx("pool.jsonl")), 0);
  assert_contains(out, "restarts          4 (limit 3, early 1)");
  assert_contains(out, "slots             2 (per slot:");
  assert_contains(out, "  slot  restarts  early  waits  waited s  crashes  "
                       "life s  downtime ms  MiB/min\n"
                       "     0         2      1      0      0.00        1    "
                       "55.0        45.00    63.60\n"
                       "     1         2      0      1      0.03        0    "
                       "60.5        37.50    60.00\n"
                       "  pool         4      1      1      0.03        1    "
                       "60.0        42.50    60.00\n");
  assert_contains(out, "down for memory   at most 1 slot at once: never two "
                       "(4 restarts, decision to ready)");
  assert_int_equal(RUN(fx("pool_ceiling.jsonl")), 0);
  assert_contains(out, "  none         1");
  assert_contains(out, "at most 2 slots at once, first at "
                       "2026-11-21T00:00:10.050Z;");
  assert_contains(out, "without the 1 past the hard ceiling (which do not "
                       "wait): at most 1");
  assert_contains(out, "(1 down for memory without a ready");
  /* No pool, no table. */
  assert_int_equal(RUN(fx("hourly.jsonl")), 0);
  assert_null(strstr(out, "slot"));
  assert_null(strstr(out, "down for memory"));
}

/* A row per slot in the strip: each restart's marker in its slot's row
 * and colour (early ones hollow), waits, and footprint lines in the
 * slot's colour (slot 0 blue, slot 1 orange). */
static void report_pool_svg_marks_restarts_per_slot(void** state) {
  char svg[128];
  static char buf[1 << 16];
  (void)state;
  snprintf(svg, sizeof(svg), "%s/pool.svg", dir);
  assert_int_equal(RUN("--svg", svg, fx("pool.jsonl")), 0);
  assert_svg(svg, 4, 1);
  FILE* f = fopen(svg, "r");
  assert_non_null(f);
  slurp(f, buf, sizeof(buf));
  assert_int_equal(count(buf, ">slot 0</text>"), 1);
  assert_int_equal(count(buf, ">slot 1</text>"), 1);
  assert_int_equal(count(buf, "<title>slot 0"), 2);
  assert_int_equal(count(buf, "<title>slot 1"), 2);
  assert_int_equal(count(buf, "<title>slot 0, early</title>"), 1);
  assert_int_equal(count(buf, "class=\"wait\""), 1);
  assert_int_equal(count(buf, "class=\"waited\""), 1);
  /* The two lives with samples, both pid 200: one line each. */
  assert_int_equal(count(buf, "class=\"footprint\" fill=\"none\" "
                              "stroke=\"#1f77b4\""), 1);
  assert_int_equal(count(buf, "class=\"footprint\" fill=\"none\" "
                              "stroke=\"#ff7f0e\""), 1);
  /* The slot rows' markers sit one row apart: slot 1's lower. */
  const char* m0 = strstr(buf, "<title>slot 0</title>");
  const char* m1 = strstr(buf, "<title>slot 1</title>");
  assert_non_null(m0);
  assert_non_null(m1);
  double x0, y0, x1, y1;
  while (m0 > buf && strncmp(m0, "d=\"M", 3) != 0) m0--;
  while (m1 > buf && strncmp(m1, "d=\"M", 3) != 0) m1--;
  assert_int_equal(sscanf(m0, "d=\"M%lf,%lf", &x0, &y0), 2);
  assert_int_equal(sscanf(m1, "d=\"M%lf,%lf", &x1, &y1), 2);
  assert_float_equal(y1 - y0, 16, 0.01);
}

/* "slot" must be an integer memsup can write (0..1023): else the line is
 * malformed, and a log whose only slots are such has no pool. */
static void report_skips_lines_with_a_slot_memsup_cannot_write(void** state) {
  char log[128];
  (void)state;
  snprintf(log, sizeof(log), "%s/badslot.jsonl", dir);
  FILE* f = fopen(log, "w");
  assert_non_null(f);
  const char* bad[] = {"-1", "1.5", "\"0\"", "5000", "null", "1e300"};
  for (int i = 0; i < 6; i++)
    fprintf(f,
            "{\"ts\":\"2026-11-21T00:00:0%d.000Z\",\"event\":\"crash\","
            "\"slot\":%s,\"pid\":7,\"gen\":1}\n",
            i, bad[i]);
  fputs("{\"ts\":\"2026-11-21T00:00:09.000Z\",\"event\":\"crash\","
        "\"pid\":7,\"gen\":1}\n",
        f);
  assert_int_equal(fclose(f), 0);
  cJSON* j = json_of(RUN("--json", log));
  assert_float_equal(at(j, "skipped"), 6, 0);
  assert_float_equal(at(j, "restarts.crashes"), 1, 0);
  assert_null(cJSON_GetObjectItem(j, "pool"));
  cJSON_Delete(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(report_rates_use_first_to_last_line),
      cmocka_unit_test(report_growth_without_samples_comes_from_restarts),
      cmocka_unit_test(report_growth_is_sample_slope_with_three_or_more),
      cmocka_unit_test(report_medians_and_what_grew),
      cmocka_unit_test(report_skips_malformed_lines_and_keeps_figures),
      cmocka_unit_test(report_skips_lines_with_a_bad_slot),
      cmocka_unit_test(report_reads_lines_in_any_order),
      cmocka_unit_test(report_text_answers_the_questions),
      cmocka_unit_test(report_svg_is_xml_with_a_marker_per_restart),
      cmocka_unit_test(report_svg_of_subnormal_figures_ends),
      cmocka_unit_test(report_svg_of_a_week_is_small_and_keeps_spikes),
      cmocka_unit_test(report_svg_draws_lives_up_to_the_restart),
      cmocka_unit_test(report_html_has_the_chart_and_the_summary),
      cmocka_unit_test(report_compare_names_the_gauge_that_stopped),
      cmocka_unit_test(report_errors_have_exit_codes_and_messages),
      cmocka_unit_test(report_clamps_out_of_range_figures_and_says_so),
      cmocka_unit_test(clamp_bytes_keeps_range_and_counts_changes),
      cmocka_unit_test(table_finds_every_key_after_growing),
      cmocka_unit_test(table_tells_colliding_keys_apart),
      cmocka_unit_test(report_keeps_every_one_of_many_pids_and_names),
      cmocka_unit_test(report_gauges_of_a_big_object_are_matched_by_name),
      cmocka_unit_test(report_ranks_gauges_by_how_they_track_the_footprint),
      cmocka_unit_test(report_compare_ignores_fixed_library_pages),
      cmocka_unit_test(report_pool_counts_restarts_per_slot),
      cmocka_unit_test(report_pool_keeps_lives_of_slots_apart),
      cmocka_unit_test(report_pool_counts_slots_down_at_once),
      cmocka_unit_test(report_pool_text_has_a_row_per_slot),
      cmocka_unit_test(report_pool_svg_marks_restarts_per_slot),
      cmocka_unit_test(report_skips_lines_with_a_slot_memsup_cannot_write),
  };
  return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
