/* it_cgroup.c: memsup inside a real cgroup v1 memory group (this machine
 * runs v1; the v2 paths are tested on fixture trees in test_cgroup.c).
 * Each test makes a fresh group under /sys/fs/cgroup/memory limited to
 * 64 MiB (swap too, where memory.memsw.limit_in_bytes exists), starts
 * memsup in it, and removes the group afterwards, also when the test
 * fails.  Skipped (with a message) when not root or without a v1 memory
 * controller.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define V1 "/sys/fs/cgroup/memory"
#define BLOAT h_example("bloat")
#define GROUP_LIMIT (64ULL << 20)

static char group[256];

static int write_file(const char* dir, const char* file, const char* text) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, text, strlen(text));
  int err = n < 0 ? -errno : 0;
  close(fd);
  return err;
}

static int read_key(const char* file, const char* key, unsigned long long* v) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", group, file);
  char* text = h_read_file(path);
  if (text == NULL) return -1;
  /* "oom_kill 3" at a line's start, not "oom_kill_disable 0". */
  char line[64];
  snprintf(line, sizeof(line), "\n%s ", key);
  char* p = strstr(text, line);
  int r = p && sscanf(p + strlen(line), "%llu", v) == 1 ? 0 : -1;
  free(text);
  return r;
}

/* memsup's child moves itself into the group before it execs memsup. */
static void enter_group(void) {
  char pid[32];
  snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
  if (write_file(group, "cgroup.procs", pid) < 0) _exit(99);
}

/* Kills whatever is left in the group, then removes it. */
static void remove_group(void) {
  char path[512];
  if (group[0] == '\0') return;
  for (int tries = 0; tries < 50; tries++) {
    if (rmdir(group) == 0 || errno == ENOENT) break;
    snprintf(path, sizeof(path), "%s/cgroup.procs", group);
    FILE* f = fopen(path, "re");
    int pid;
    while (f && fscanf(f, "%d", &pid) == 1) kill(pid, SIGKILL);
    if (f) fclose(f);
    h_sleep_ms(100);
  }
  if (access(group, F_OK) == 0) fprintf(stderr, "could not remove %s\n", group);
  group[0] = '\0';
}

static int setup(void** state) {
  if (geteuid() != 0 || access(V1 "/memory.limit_in_bytes", F_OK) != 0) {
    fprintf(stderr, "it_cgroup: skipped: needs root and a cgroup v1 memory "
                    "controller at " V1 "\n");
    *state = NULL;
    return 0;
  }
  snprintf(group, sizeof(group), V1 "/memsup-it-%d", (int)getpid());
  if (mkdir(group, 0755) < 0) {
    fprintf(stderr, "mkdir %s: %s\n", group, strerror(errno));
    group[0] = '\0';
    return -1;
  }
  char limit[32];
  snprintf(limit, sizeof(limit), "%llu", GROUP_LIMIT);
  /* memsw (memory + swap) must stay >= the memory limit: set it after. */
  if (write_file(group, "memory.limit_in_bytes", limit) < 0 ||
      (access(V1 "/memory.memsw.limit_in_bytes", F_OK) == 0 &&
       write_file(group, "memory.memsw.limit_in_bytes", limit) < 0)) {
    fprintf(stderr, "limit %s: %s\n", group, strerror(errno));
    remove_group();
    return -1;
  }
  h_pre_exec = enter_group;
  return h_setup(state);
}

static int teardown(void** state) {
  int r = 0;
  if (*state) r = h_teardown(state);
  h_pre_exec = NULL;
  remove_group();
  return r;
}

#define SKIP_UNLESS_V1(h) \
  do {                    \
    if ((h) == NULL) skip(); \
  } while (0)

/* --limit 90% is 90% of the group's 64 MiB, from the real
 * memory.limit_in_bytes; a worker SIGKILLed by someone else is a crash
 * without oom_kill. */
static void percent_limit_is_of_the_group_and_plain_sigkill_is_no_oom(void** state) {
  h_run_t* h = *state;
  SKIP_UNLESS_V1(h);
  const char* samples = h_path(h, "samples.jsonl");
  h_start(h, "--limit", "90%", "--log", h->log, "--sample-log", samples,
          "--", BLOAT, "--mode", "idle", NULL);
  assert_int_equal(h_wait_event(h, "start", 1, h_ms(5000)), 1);
  cJSON* starts = h_events(h, "start");
  pid_t worker = (pid_t)h_num(cJSON_GetArrayItem(starts, 0), "pid");
  cJSON_Delete(starts);
  /* The sample lines carry the limit memsup resolved. */
  cJSON* lines = NULL;
  for (int i = 0; i < h_ms(50); i++) {
    cJSON_Delete(lines);
    lines = h_events_in(samples, NULL);
    if (cJSON_GetArraySize(lines) > 0) break;
    h_sleep_ms(100);
  }
  assert_true(cJSON_GetArraySize(lines) > 0);
  /* 0.9 * 67108864 = 60397977.6, rounded down: 57.6 MiB. */
  assert_int_equal((long long)h_num(cJSON_GetArrayItem(lines, 0), "limit"),
                   60397977LL);
  cJSON_Delete(lines);
  assert_int_equal(kill(worker, SIGKILL), 0);
  assert_int_equal(h_wait_event(h, "crash", 1, h_ms(5000)), 1);
  cJSON* crashes = h_events(h, "crash");
  cJSON* crash = cJSON_GetArrayItem(crashes, 0);
  assert_string_equal(h_str(crash, "signal"), "SIGKILL");
  assert_true(cJSON_IsFalse(h_get(crash, "oom_kill")));
  cJSON_Delete(crashes);
  assert_false(h_stderr_contains(h, "OOM killer"));
  h_signal(h, SIGTERM);
  h_wait(h, h_ms(10000));
}

/* A worker that needs 200 MiB at start (startpeak) in a 64 MiB group,
 * under a --limit above the group's (1G), so memsup's limit can never act
 * first: the kernel OOM-kills it, and the crash line says so. */
static void kernel_oom_kill_is_named_in_the_crash_line(void** state) {
  h_run_t* h = *state;
  SKIP_UNLESS_V1(h);
  unsigned long long before = 0, after = 0;
  assert_int_equal(read_key("memory.oom_control", "oom_kill", &before), 0);
  h_start(h, "--limit", "1G", "--log", h->log, "--", BLOAT, "--mode",
          "startpeak", "--size", "200", NULL);
  assert_int_equal(h_wait_event(h, "crash", 1, h_ms(10000)), 1);
  cJSON* crashes = h_events(h, "crash");
  cJSON* crash = cJSON_GetArrayItem(crashes, 0);
  assert_string_equal(h_str(crash, "signal"), "SIGKILL");
  assert_true(cJSON_IsTrue(h_get(crash, "oom_kill")));
  cJSON_Delete(crashes);
  assert_true(h_stderr_contains(h, "killed by the kernel's OOM killer"));
  assert_true(h_stderr_contains(h, strrchr(group, '/')));
  assert_int_equal(read_key("memory.oom_control", "oom_kill", &after), 0);
  assert_true(after > before);
  h_signal(h, SIGTERM);
  h_wait(h, h_ms(10000));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          percent_limit_is_of_the_group_and_plain_sigkill_is_no_oom, setup,
          teardown),
      cmocka_unit_test_setup_teardown(kernel_oom_kill_is_named_in_the_crash_line,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
