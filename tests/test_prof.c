/* test_prof.c: the names of heap profiles (supervisor/prof.c). */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "memsup_wire.h"
#include "prof.h"

static void path_is_next_to_the_log_and_absolute(void** state) {
  char buf[MEMSUP_PROF_PATH_MAX], cwd[PATH_MAX], want[PATH_MAX + 64];
  (void)state;
  assert_int_equal(ms_prof_path(buf, sizeof(buf), "/var/log/r.jsonl", 42, 3, 1),
                   0);
  assert_string_equal(buf, "/var/log/r.jsonl.3.42.end.heap");
  assert_int_equal(ms_prof_path(buf, sizeof(buf), "/var/log/r.jsonl", 42, 3, 0),
                   0);
  assert_string_equal(buf, "/var/log/r.jsonl.3.42.start.heap");
  /* A relative log: the worker may run elsewhere, so the path is made
   * absolute with memsup's directory. */
  assert_non_null(getcwd(cwd, sizeof(cwd)));
  assert_int_equal(ms_prof_path(buf, sizeof(buf), "r.jsonl", 7, 1, 1), 0);
  snprintf(want, sizeof(want), "%s/r.jsonl.1.7.end.heap", cwd);
  assert_string_equal(buf, want);
}

static void no_log_or_too_long_is_refused(void** state) {
  char buf[MEMSUP_PROF_PATH_MAX], log[MEMSUP_PROF_PATH_MAX];
  (void)state;
  assert_int_equal(ms_prof_path(buf, sizeof(buf), NULL, 1, 1, 1), -ENOENT);
  assert_int_equal(ms_prof_path(buf, sizeof(buf), "", 1, 1, 1), -ENOENT);
  memset(log, 'a', sizeof(log) - 1);
  log[0] = '/';
  log[sizeof(log) - 1] = '\0';
  assert_int_equal(ms_prof_path(buf, sizeof(buf), log, 1, 1, 1), -ENAMETOOLONG);
  /* Not even a bigger buffer gets past what the wire carries. */
  char big[2 * MEMSUP_PROF_PATH_MAX];
  assert_int_equal(ms_prof_path(big, sizeof(big), log, 1, 1, 1), -ENAMETOOLONG);
}

/* Old generations' files go, whatever their pid; others stay; a log name
 * with glob characters matches only itself. */
static void remove_gen_removes_that_generation_only(void** state) {
  char dir[] = "/tmp/memsup-prof-XXXXXX", log[128], p[256], other[128];
  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(log, sizeof(log), "%s/r[1]*.jsonl", dir);
  snprintf(other, sizeof(other), "%s/r1x.jsonl", dir);
  const char* names[][2] = {{log, "3.10.start"}, {log, "3.10.end"},
                            {log, "3.99.end"},   {log, "4.11.end"},
                            {other, "3.10.end"}};
  for (size_t i = 0; i < 5; i++) {
    snprintf(p, sizeof(p), "%s.%s.heap", names[i][0], names[i][1]);
    FILE* f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
  }
  assert_int_equal(ms_prof_remove_gen(log, 3), 3);
  snprintf(p, sizeof(p), "%s.4.11.end.heap", log);
  assert_int_equal(access(p, F_OK), 0);
  snprintf(p, sizeof(p), "%s.3.10.end.heap", other);
  assert_int_equal(access(p, F_OK), 0);
  assert_int_equal(ms_prof_remove_gen(log, 3), 0);
  snprintf(p, sizeof(p), "rm -rf '%s'", dir);
  assert_int_equal(system(p), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(path_is_next_to_the_log_and_absolute),
      cmocka_unit_test(no_log_or_too_long_is_refused),
      cmocka_unit_test(remove_gen_removes_that_generation_only),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
