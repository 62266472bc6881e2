/* it_cli.c: the command line and the files memsup opens, seen from
 * outside: the real binary's exit code and stderr for bad numbers, a
 * symlink planted at the log path, a loose --state-dir, and -vv.
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOAT h_example("bloat")

/* memsup exits with code and says needle in a "memsup: " line. */
static void expect_exit(h_run_t* h, const char* const* argv, int code,
                        const char* needle) {
  h_startv(h, argv);
  assert_int_equal(h_wait(h, 10000), code);
  char* err = h_read_file(h->err);
  assert_non_null(err);
  if (strncmp(err, "memsup: ", 8) != 0 && !strstr(err, "\nmemsup: "))
    fail_msg("no \"memsup: \" line on stderr: %s", err);
  if (!strstr(err, needle))
    fail_msg("stderr does not mention '%s': %s", needle, err);
  free(err);
}

#define EXIT(name, code, needle, ...)           \
  static void name(void** state) {              \
    const char* argv[] = {__VA_ARGS__, NULL};   \
    expect_exit(*state, argv, code, needle);    \
  }

/* max+1 wrapped to 0 here once: SIGFPE (exit 136) from a modulo by zero,
 * and 4294967294 asked calloc for 32 GiB (exit 111). */
EXIT(max_restarts_4294967295_is_a_usage_error, 100,
     "--max-restarts '4294967295'", "--max-restarts", "4294967295", "--",
     "true")
EXIT(max_restarts_4294967294_is_a_usage_error, 100,
     "--max-restarts '4294967294'", "--max-restarts", "4294967294", "--",
     "true")
/* As pid_t, 4294967295 is -1: kill(-1, 0) "succeeds" for every process. */
EXIT(pid_4294967295_is_a_usage_error, 100, "--pid '4294967295'", "watch",
     "--pid", "4294967295")
EXIT(grace_past_720h_is_a_usage_error, 100, "--grace '18446744074s'",
     "--grace", "18446744074s", "--", "true")
EXIT(limit_past_8192t_is_a_usage_error, 100, "--limit '16777216T'",
     "--limit", "16777216T", "--", "true")
EXIT(within_zero_is_a_usage_error, 100, "--within '0'", "--within", "0",
     "--", "true")
EXIT(limit_without_command_says_no_worker_command, 100, "no worker command",
     "--limit", "128M")
EXIT(watch_without_pid_says_so, 100, "memsup watch needs --pid PID", "watch",
     "--limit", "128M")
/* The largest accepted count runs (and the worker's exit ends memsup). */
EXIT(max_restarts_10000_runs, 0, "exited with status 0", "--max-restarts",
     "10000", "--", "true")

/* -vv is two -v: debug lines ("started ...") appear. */
EXIT(double_v_is_verbose, 0, "started true", "-vv", "--", "true")

/* A symlink planted at the log path is refused (exit 100) and its target
 * is neither created nor written. */
static void symlink_at_log_path_is_refused(void** state) {
  h_run_t* h = *state;
  const char* target = h_path(h, "target");
  const char* link = h_path(h, "log.jsonl");
  char t[300], l[300];
  struct stat sb;
  snprintf(t, sizeof(t), "%s", target);
  snprintf(l, sizeof(l), "%s", link);
  assert_int_equal(symlink(t, l), 0);
  const char* argv[] = {"--log", l, "--", "true", NULL};
  expect_exit(h, argv, 100, "is a symbolic link");
  assert_int_equal(stat(t, &sb), -1);
  assert_int_equal(errno, ENOENT);
}

static void symlink_at_sample_log_path_is_refused(void** state) {
  h_run_t* h = *state;
  char t[300], l[300];
  struct stat sb;
  snprintf(t, sizeof(t), "%s", h_path(h, "target"));
  snprintf(l, sizeof(l), "%s", h_path(h, "samples.jsonl"));
  FILE* f = fopen(t, "w");
  assert_non_null(f);
  fclose(f);
  assert_int_equal(symlink(t, l), 0);
  const char* argv[] = {"--sample-log", l, "--", "true", NULL};
  expect_exit(h, argv, 100, "is a symbolic link");
  assert_int_equal(stat(t, &sb), 0);
  assert_int_equal(sb.st_size, 0);
}

/* The restart log is created 0640 under a 022 umask (the harness's). */
static void log_is_created_without_world_read(void** state) {
  h_run_t* h = *state;
  struct stat sb;
  mode_t old = umask(022);
  h_start(h, "--log", h->log, "--", "true", NULL);
  umask(old);
  assert_int_equal(h_wait(h, 10000), 0);
  assert_int_equal(stat(h->log, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0640);
}

/* A world-writable state directory is used, with a warning. */
static void loose_state_dir_is_warned_about(void** state) {
  h_run_t* h = *state;
  char dir[300];
  snprintf(dir, sizeof(dir), "%s", h_path(h, "state"));
  assert_int_equal(mkdir(dir, 0700), 0);
  assert_int_equal(chmod(dir, 0777), 0);
  const char* argv[] = {"--state-dir", dir, "--", "true", NULL};
  expect_exit(h, argv, 0, "state directory");
  assert_true(h_stderr_contains(h, "is writable by everyone"));
}

static void private_state_dir_is_not_warned_about(void** state) {
  h_run_t* h = *state;
  char dir[300];
  snprintf(dir, sizeof(dir), "%s", h_path(h, "state"));
  assert_int_equal(mkdir(dir, 0700), 0);
  const char* argv[] = {"--state-dir", dir, "--", "true", NULL};
  expect_exit(h, argv, 0, "exited with status 0");
  assert_false(h_stderr_contains(h, "writable"));
}

/* Lines of path: whole JSON objects with an "event" (*good) and other
 * lines (*bad); *last_event gets the last good line's event. */
static void count_lines(const char* path, int* good, int* bad,
                        char* last_event, size_t len) {
  char* s = h_read_file(path);
  *good = *bad = 0;
  last_event[0] = '\0';
  assert_non_null(s);
  for (char* line = s; *line;) {
    char* nl = strchr(line, '\n');
    if (nl == NULL) { /* a partial last line: the next write finishes it */
      ++*bad;
      break;
    }
    *nl = '\0';
    cJSON* o = cJSON_Parse(line);
    const cJSON* ev = cJSON_GetObjectItemCaseSensitive(o, "event");
    if (cJSON_IsObject(o) && cJSON_IsString(ev)) {
      ++*good;
      snprintf(last_event, len, "%s", ev->valuestring);
    } else {
      ++*bad;
    }
    cJSON_Delete(o);
    line = nl + 1;
  }
  free(s);
}

static int fs_teardown(void** state) {
  h_run_t* h = *state;
  umount2(h_path(h, "fs"), MNT_DETACH); /* before the harness removes dir */
  return h_teardown(state);
}

/* The restart log on a disk that fills up, then gets room again: memsup
 * keeps supervising, says "No space left on device" (not an I/O error),
 * and once there is room its events land again as whole lines; the one
 * the full disk cut is the only line lost. */
static void restart_log_on_a_full_disk_resumes_with_whole_lines(void** state) {
  h_run_t* h = *state;
  char fs[300], log[320], filler[320], last[32];
  int good, bad;
  snprintf(fs, sizeof(fs), "%s", h_path(h, "fs"));
  snprintf(log, sizeof(log), "%s/log.jsonl", fs);
  snprintf(filler, sizeof(filler), "%s/filler", fs);
  assert_int_equal(mkdir(fs, 0700), 0);
  if (mount("tmpfs", fs, "tmpfs", 0, "size=64k,mode=0700") < 0) {
    print_message("skipped: mount tmpfs: %s (needs root)\n", strerror(errno));
    skip();
  }
  /* Leave room for a few events only. */
  FILE* f = fopen(filler, "w");
  assert_non_null(f);
  static char zeros[56 * 1024];
  assert_int_equal(fwrite(zeros, 1, sizeof(zeros), f), sizeof(zeros));
  assert_int_equal(fclose(f), 0);

  h_start(h, "--limit", "40M", "--log", log, "--", BLOAT, "--mode", "leak",
          "--rate", "64", NULL);
  for (int t = 0; t < h_ms(30000); t += 50) {
    if (h_stderr_contains(h, "No space left on device")) break;
    h_sleep_ms(50);
  }
  assert_true(h_stderr_contains(h, "No space left on device"));
  assert_false(h_stderr_contains(h, "Input/output error"));
  count_lines(log, &good, &bad, last, sizeof(last));
  int before = good;

  /* Room again: the next events land, whole. */
  assert_int_equal(unlink(filler), 0);
  for (int t = 0; t < h_ms(30000); t += 50) {
    count_lines(log, &good, &bad, last, sizeof(last));
    if (good >= before + 3) break;
    h_sleep_ms(50);
  }
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 128 + SIGTERM);
  count_lines(log, &good, &bad, last, sizeof(last));
  if (good < before + 3) fail_msg("logging did not resume: %d lines", good);
  print_message("log: %d whole lines, %d torn\n", good, bad);
  assert_true(bad <= 1);            /* only the line the disk cut */
  assert_string_equal(last, "exit"); /* memsup's last event, whole */
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_setup, h_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(max_restarts_4294967295_is_a_usage_error),
      T(max_restarts_4294967294_is_a_usage_error),
      T(pid_4294967295_is_a_usage_error),
      T(grace_past_720h_is_a_usage_error),
      T(limit_past_8192t_is_a_usage_error),
      T(within_zero_is_a_usage_error),
      T(limit_without_command_says_no_worker_command),
      T(watch_without_pid_says_so),
      T(max_restarts_10000_runs),
      T(double_v_is_verbose),
      T(symlink_at_log_path_is_refused),
      T(symlink_at_sample_log_path_is_refused),
      T(log_is_created_without_world_read),
      T(loose_state_dir_is_warned_about),
      T(private_state_dir_is_not_warned_about),
      cmocka_unit_test_setup_teardown(
          restart_log_on_a_full_disk_resumes_with_whole_lines, h_setup,
          fs_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
