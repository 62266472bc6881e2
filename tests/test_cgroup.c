/* test_cgroup.c: the cgroup parsers on literal text, and the readers on
 * fake cgroup trees in $MEMSUP_FIXTURES/cgroup/ (each with its own
 * proc_self_cgroup file): v2 memory.current/max/events, v1
 * usage/limit/oom_control.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup.h"

#define MiB (1ULL << 20)

static int open_tree(ms_cgroup_t* cg, const char* name) {
  const char* dir = getenv("MEMSUP_FIXTURES");
  char root[4096], psc[4200];
  snprintf(root, sizeof(root), "%s/cgroup/%s", dir ? dir : "tests/fixtures",
           name);
  snprintf(psc, sizeof(psc), "%s/proc_self_cgroup", root);
  return ms_cgroup_open(cg, root, psc);
}

static void parse_self_finds_v1_memory_and_v2_groups(void** state) {
  (void)state;
  char v1[64], v2[64];
  ms_cgroup_parse_self("9:name=systemd:/\n5:cpu,memory:/a/b\n0::/u.slice\n",
                       v1, sizeof(v1), v2, sizeof(v2));
  assert_string_equal(v1, "/a/b");
  assert_string_equal(v2, "/u.slice");
  /* memoryx is not memory; a line without a path is skipped. */
  ms_cgroup_parse_self("4:memoryx:/no\n3:memory\n", v1, sizeof(v1), v2,
                       sizeof(v2));
  assert_string_equal(v1, "");
  assert_string_equal(v2, "");
  ms_cgroup_parse_self("4:memory:/last", v1, sizeof(v1), v2, sizeof(v2));
  assert_string_equal(v1, "/last");
}

static void parse_value_reads_numbers_and_max(void** state) {
  (void)state;
  uint64_t v = 0;
  assert_int_equal(ms_cgroup_parse_value("67108864\n", &v), 0);
  assert_int_equal(v, 64 * MiB);
  assert_int_equal(ms_cgroup_parse_value("max\n", &v), 0);
  assert_true(v == UINT64_MAX);
  assert_true(ms_cgroup_unlimited(v));
  assert_int_equal(ms_cgroup_parse_value("9223372036854771712\n", &v), 0);
  assert_true(ms_cgroup_unlimited(v));
  assert_false(ms_cgroup_unlimited(64 * MiB));
  assert_int_equal(ms_cgroup_parse_value("", &v), -EINVAL);
  assert_int_equal(ms_cgroup_parse_value("12k\n", &v), -EINVAL);
  assert_int_equal(ms_cgroup_parse_value("maxi", &v), -EINVAL);
  assert_int_equal(ms_cgroup_parse_value("99999999999999999999999", &v), -EINVAL);
}

static void parse_key_tells_oom_from_oom_kill(void** state) {
  (void)state;
  const char* ev = "low 0\nhigh 1\nmax 2\noom 3\noom_kill 4\noom_group_kill 5\n";
  uint64_t v = 0;
  assert_int_equal(ms_cgroup_parse_key(ev, "oom", &v), 0);
  assert_int_equal(v, 3);
  assert_int_equal(ms_cgroup_parse_key(ev, "oom_kill", &v), 0);
  assert_int_equal(v, 4);
  assert_int_equal(ms_cgroup_parse_key(ev, "oom_group_kill", &v), 0);
  assert_int_equal(v, 5);
  assert_int_equal(ms_cgroup_parse_key("oom_kill_disable 0\nunder_oom 0\n",
                                       "oom_kill", &v), -ENOENT);
  assert_int_equal(ms_cgroup_parse_key("oom_kill x\n", "oom_kill", &v), -EINVAL);
  assert_int_equal(ms_cgroup_parse_key("oom_kill 1 2\n", "oom_kill", &v), -EINVAL);
  assert_int_equal(ms_cgroup_parse_key("", "oom_kill", &v), -ENOENT);
}

static void reads_v2_current_max_and_events(void** state) {
  (void)state;
  ms_cgroup_t cg;
  ms_cgroup_read_t r;
  assert_int_equal(open_tree(&cg, "v2-limited"), 0);
  assert_int_equal(cg.version, 2);
  assert_non_null(strstr(cg.dir, "app.slice/w.service"));
  ms_cgroup_read(&cg, &r);
  assert_true(r.has_usage);
  assert_int_equal(r.usage, 40 * MiB);
  assert_true(r.has_limit);
  assert_int_equal(r.limit, 1024 * MiB);
  assert_true(r.has_oom_kill);
  assert_int_equal(r.oom_kill, 2);
  assert_int_equal(r.oom, 3);
  ms_cgroup_close(&cg);
  assert_int_equal(cg.fd_usage, -1);
}

static void reads_v2_max_as_no_limit_and_missing_files_as_absent(void** state) {
  (void)state;
  ms_cgroup_t cg;
  ms_cgroup_read_t r;
  assert_int_equal(open_tree(&cg, "v2-max"), 0);
  assert_int_equal(cg.version, 2);
  ms_cgroup_read(&cg, &r);
  assert_false(r.has_limit);
  assert_false(r.has_usage);   /* the fixture has no memory.current */
  assert_false(r.has_oom_kill);
  ms_cgroup_close(&cg);
}

static void reads_v1_usage_limit_and_oom_control(void** state) {
  (void)state;
  ms_cgroup_t cg;
  ms_cgroup_read_t r;
  assert_int_equal(open_tree(&cg, "v1-limited"), 0);
  assert_int_equal(cg.version, 1);
  assert_non_null(strstr(cg.dir, "memory/process_api/abc"));
  ms_cgroup_read(&cg, &r);
  assert_true(r.has_usage);
  assert_int_equal(r.usage, 30 * MiB);
  assert_true(r.has_limit);
  assert_int_equal(r.limit, 256 * MiB);
  assert_true(r.has_oom_kill);
  assert_int_equal(r.oom_kill, 5);
  ms_cgroup_close(&cg);
}

static void reads_v1_container_top_group_without_oom_kill_line(void** state) {
  (void)state;
  ms_cgroup_t cg;
  ms_cgroup_read_t r;
  /* /proc/self/cgroup names a host path the mount does not have. */
  assert_int_equal(open_tree(&cg, "v1-container"), 0);
  assert_int_equal(cg.version, 1);
  ms_cgroup_read(&cg, &r);
  assert_true(r.has_limit);
  assert_int_equal(r.limit, 512 * MiB);
  assert_false(r.has_oom_kill); /* kernel < 4.13: no oom_kill line */
  ms_cgroup_close(&cg);
}

static void garbage_and_missing_trees(void** state) {
  (void)state;
  ms_cgroup_t cg;
  ms_cgroup_read_t r;
  assert_int_equal(open_tree(&cg, "v1-unlimited"), 0);
  ms_cgroup_read(&cg, &r);
  assert_false(r.has_limit);
  ms_cgroup_close(&cg);
  assert_int_equal(open_tree(&cg, "v1-garbage"), 0);
  ms_cgroup_read(&cg, &r);
  assert_false(r.has_limit);
  ms_cgroup_close(&cg);
  assert_int_equal(open_tree(&cg, "no-such-tree"), -ENOENT);
  assert_int_equal(cg.version, 0);
  ms_cgroup_read(&cg, &r); /* safe on a group not found */
  assert_false(r.has_usage || r.has_limit || r.has_oom_kill);
  ms_cgroup_close(&cg);
}

static void this_machine_has_a_group_or_none(void** state) {
  (void)state;
  ms_cgroup_t cg;
  ms_cgroup_read_t r;
  int rc = ms_cgroup_open(&cg, "/sys/fs/cgroup", "/proc/self/cgroup");
  assert_true(rc == 0 || rc == -ENOENT);
  ms_cgroup_read(&cg, &r);
  if (rc == 0) assert_true(r.has_usage && r.usage > 0);
  ms_cgroup_close(&cg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parse_self_finds_v1_memory_and_v2_groups),
      cmocka_unit_test(parse_value_reads_numbers_and_max),
      cmocka_unit_test(parse_key_tells_oom_from_oom_kill),
      cmocka_unit_test(reads_v2_current_max_and_events),
      cmocka_unit_test(reads_v2_max_as_no_limit_and_missing_files_as_absent),
      cmocka_unit_test(reads_v1_usage_limit_and_oom_control),
      cmocka_unit_test(reads_v1_container_top_group_without_oom_kill_line),
      cmocka_unit_test(garbage_and_missing_trees),
      cmocka_unit_test(this_machine_has_a_group_or_none),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
