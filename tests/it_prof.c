/* it_prof.c: heap profiles of a jemalloc worker with profiling on
 * (docs/profiling.md), with the real memsup on a real worker.
 * examples/profleak.c peaks at start-up (16 MiB, freed), allocates and
 * frees a scratch buffer per request, and leaks 256 KiB per request in
 * remember_request().  With MALLOC_CONF=prof:true its hello says "prof";
 * memsup asks it for a profile at ready and before the restart's save,
 * names both in the restart line, and `memsup report` names
 * remember_request as the allocation site that grew most: the answer
 * `jeprof --base=START BINARY END` gives, which this test runs itself.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "harness.h"

/* jeprof's first row with flat bytes > 0: the top allocation site. */
static void jeprof_top(const char* base, const char* exe, const char* end,
                       char* name, size_t cap) {
  char cmd[2048], line[1024];
  snprintf(cmd, sizeof(cmd),
           "jeprof --text --show_bytes --base='%s' '%s' '%s' 2>/dev/null",
           base, exe, end);
  FILE* p = popen(cmd, "r");
  assert_non_null(p);
  name[0] = '\0';
  while (fgets(line, sizeof(line), p)) {
    double flat, a, b, cum, c;
    int used = 0;
    if (name[0] == '\0' &&
        sscanf(line, " %lf %lf%% %lf%% %lf %lf%% %n", &flat, &a, &b, &cum, &c,
               &used) == 5 &&
        used > 0 && flat > 0) {
      line[strcspn(line, "\n")] = '\0';
      snprintf(name, cap, "%s", line + used);
    }
  }
  assert_int_equal(pclose(p), 0);
}

static void leak_in_a_named_function_is_the_top_allocation_site(void** state) {
  h_run_t* h = *state;
  /* One sample per 128 KiB allocated on average (jemalloc's default is
   * 512 KiB): docs/profiling.md has what it costs. */
  setenv("MALLOC_CONF", "prof:true,lg_prof_sample:17", 1);
  h_start(h, "--limit", "48M", "--log", h->log, "--", h_example("profleak"),
          NULL);
  unsetenv("MALLOC_CONF");
  assert_true(h_wait_event(h, "restart", 1, 30000) >= 1);
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 143);

  cJSON* rs = h_events(h, "restart");
  const cJSON* r = cJSON_GetArrayItem(rs, 0);
  const cJSON* prof = h_get(r, "prof");
  char start[512], end[512];
  snprintf(start, sizeof(start), "%s", h_str(prof, "start"));
  snprintf(end, sizeof(end), "%s", h_str(prof, "end"));
  /* Next to the log, named after the old worker. */
  char want[512];
  snprintf(want, sizeof(want), ".%g.%g.end.heap", h_num(r, "gen") - 1,
           h_num(r, "old_pid"));
  assert_true(strncmp(end, h->log, strlen(h->log)) == 0);
  assert_non_null(strstr(end, want));
  assert_int_equal(access(start, R_OK), 0);
  assert_int_equal(access(end, R_OK), 0);
  cJSON_Delete(rs);

  assert_int_equal(
      h_tool(h, "report", 60000, "report", "--json", h->log, NULL), 0);
  char* out = h_read_file(h_path(h, "report.out"));
  cJSON* j = cJSON_Parse(out);
  if (!cJSON_IsObject(j)) fail_msg("report --json printed: %s", out);
  free(out);
  const cJSON* as = h_get(j, "allocation_sites");
  if (cJSON_GetObjectItem(as, "error"))
    fail_msg("allocation_sites: %s", h_str(as, "error"));
  const cJSON* top = cJSON_GetArrayItem(h_get(as, "sites"), 0);
  assert_non_null(top);
  assert_string_equal(h_str(top, "name"), "remember_request");
  /* A life under a 48 MiB limit leaks most of it there. */
  assert_true(h_num(top, "bytes") > 16 * 1048576.0);
  /* The same answer jeprof gives on the same files. */
  char name[512];
  jeprof_top(start, h_str(as, "binary"), end, name, sizeof(name));
  assert_string_equal(name, "remember_request");
  cJSON_Delete(j);

  assert_int_equal(h_tool(h, "text", 60000, "report", h->log, NULL), 0);
  out = h_read_file(h_path(h, "text.out"));
  if (strstr(out, "remember_request") == NULL)
    fail_msg("report text lacks the site:\n%s", out);
  free(out);
}

/* Without profiling on, the worker does not offer it and memsup asks for
 * nothing: the restart line's prof is null and no file is written. */
static void worker_without_profiling_gets_no_profile_requests(void** state) {
  h_run_t* h = *state;
  unsetenv("MALLOC_CONF");
  h_start(h, "--limit", "48M", "--log", h->log, "--", h_example("profleak"),
          NULL);
  assert_true(h_wait_event(h, "restart", 1, 30000) >= 1);
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 143);
  cJSON* rs = h_events(h, "restart");
  assert_true(cJSON_IsNull(h_get(cJSON_GetArrayItem(rs, 0), "prof")));
  cJSON_Delete(rs);
  char pat[600];
  snprintf(pat, sizeof(pat), "ls '%s'.*.heap >/dev/null 2>&1", h->log);
  assert_int_not_equal(system(pat), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_setup, h_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(leak_in_a_named_function_is_the_top_allocation_site),
      T(worker_without_profiling_gets_no_profile_requests),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
