/* test_restartlog.c: the JSON-lines log file itself: how it is opened
 * (mode, symlinks) and what lands on disk when the disk is full (/dev/full,
 * and a 64 KiB tmpfs filled for real, which needs root to mount).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "restartlog.h"

typedef struct {
  char dir[64];
  char path[128];
  int mounted;
} fx_t;

static int setup(void** state) {
  fx_t* fx = calloc(1, sizeof(*fx));
  assert_non_null(fx);
  strcpy(fx->dir, "/tmp/memsup-rlog-XXXXXX");
  assert_non_null(mkdtemp(fx->dir));
  *state = fx;
  return 0;
}

static int rm_cb(const char* p, const struct stat* sb, int type,
                 struct FTW* ftw) {
  (void)sb, (void)ftw;
  return type == FTW_DP ? rmdir(p) : unlink(p);
}

static int teardown(void** state) {
  fx_t* fx = *state;
  if (fx->mounted) assert_int_equal(umount2(fx->dir, MNT_DETACH), 0);
  assert_int_equal(nftw(fx->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS), 0);
  free(fx);
  return 0;
}

static const char* in(fx_t* fx, const char* name) {
  snprintf(fx->path, sizeof(fx->path), "%s/%s", fx->dir, name);
  return fx->path;
}

/* An event of about pad + 80 bytes. */
static cJSON* event(const char* name, unsigned n, size_t pad) {
  cJSON* ev = ms_rlog_event(name, 1234, n);
  char* s = malloc(pad + 1);
  assert_non_null(ev);
  assert_non_null(s);
  memset(s, 'x', pad);
  s[pad] = '\0';
  cJSON_AddStringToObject(ev, "pad", s);
  free(s);
  return ev;
}

static mode_t created_mode(fx_t* fx, mode_t mask, const char* name) {
  ms_rlog_t* log;
  struct stat sb;
  mode_t old = umask(mask);
  int r = ms_rlog_open(in(fx, name), 0, &log);
  umask(old);
  assert_int_equal(r, 0);
  ms_rlog_close(log);
  assert_int_equal(stat(in(fx, name), &sb), 0);
  return sb.st_mode & 07777;
}

static void log_is_created_0640_minus_the_umask(void** state) {
  fx_t* fx = *state;
  assert_int_equal(created_mode(fx, 0, "a.jsonl"), 0640);
  assert_int_equal(created_mode(fx, 022, "b.jsonl"), 0640);
  assert_int_equal(created_mode(fx, 077, "c.jsonl"), 0600);
}

/* A symlink planted at the log path would make memsup append to its
 * target; it is refused and the target is left alone. */
static void open_refuses_a_symlink_at_the_path(void** state) {
  fx_t* fx = *state;
  char target[128];
  ms_rlog_t* log = (ms_rlog_t*)1;
  struct stat sb;
  snprintf(target, sizeof(target), "%s/target", fx->dir);
  assert_int_equal(symlink(target, in(fx, "log.jsonl")), 0);
  assert_int_equal(ms_rlog_open(fx->path, 0, &log), -ELOOP);
  assert_null(log);
  assert_int_equal(stat(target, &sb), -1); /* not created through it */
  assert_int_equal(errno, ENOENT);
  /* An existing target is not appended to either. */
  close(open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  assert_int_equal(ms_rlog_open(fx->path, 0, &log), -ELOOP);
  assert_int_equal(stat(target, &sb), 0);
  assert_int_equal(sb.st_size, 0);
}

/* The error is the write's own: "No space left on device", not EIO. */
static void write_to_a_full_device_reports_enospc(void** state) {
  ms_rlog_t* log;
  (void)state;
  assert_int_equal(ms_rlog_open("/dev/full", 0, &log), 0);
  assert_int_equal(ms_rlog_write(log, event("restart", 1, 10)), -ENOSPC);
  assert_int_equal(ms_rlog_write(log, event("restart", 2, 10)), -ENOSPC);
  ms_rlog_close(log);
}

/* Counts the lines of path: whole JSON objects (*good) and others (*bad);
 * returns the last line's "event", or "" (static buffer). */
static const char* count_lines(const char* path, int* good, int* bad) {
  static char last[32];
  FILE* f = fopen(path, "re");
  char* line = NULL;
  size_t cap = 0;
  ssize_t n;
  *good = *bad = 0;
  last[0] = '\0';
  assert_non_null(f);
  while ((n = getline(&line, &cap, f)) > 0) {
    cJSON* o = cJSON_Parse(line);
    const cJSON* ev = cJSON_GetObjectItemCaseSensitive(o, "event");
    if (line[n - 1] == '\n' && cJSON_IsObject(o) && cJSON_IsString(ev)) {
      ++*good;
      snprintf(last, sizeof(last), "%s", ev->valuestring);
    } else {
      ++*bad;
      last[0] = '\0';
    }
    cJSON_Delete(o);
  }
  free(line);
  fclose(f);
  return last;
}

/* A real full disk: a 64 KiB tmpfs with a filler file.  The write that
 * hits the end lands in part (a torn line), the error says ENOSPC, later
 * writes fail whole while the disk stays full, and once there is room the
 * next event lands as a whole line of its own: only the torn one is lost. */
static void full_disk_tears_one_line_and_logging_resumes_whole(void** state) {
  fx_t* fx = *state;
  ms_rlog_t* log;
  struct stat sb;
  char filler[128];
  int fd, good, bad, err = 0;
  unsigned n = 0;
  char* buf;

  if (mount("tmpfs", fx->dir, "tmpfs", 0, "size=64k,mode=0700") < 0) {
    print_message("skipped: mount tmpfs: %s (needs root)\n", strerror(errno));
    skip();
  }
  fx->mounted = 1;
  snprintf(filler, sizeof(filler), "%s/filler", fx->dir);
  fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  buf = calloc(1, 16384);
  assert_non_null(buf);
  assert_int_equal(write(fd, buf, 16384), 16384);
  free(buf);
  close(fd);

  assert_int_equal(ms_rlog_open(in(fx, "log.jsonl"), 0, &log), 0);
  /* Lines of ~1500 bytes do not divide the 4 KiB pages tmpfs allocates:
   * the last one that fits only in part is torn. */
  while (n < 1000 && (err = ms_rlog_write(log, event("sample", n, 1400))) == 0)
    n++;
  assert_int_equal(err, -ENOSPC);
  assert_true(n > 10);
  assert_int_equal(stat(fx->path, &sb), 0);
  assert_true(sb.st_size > 0);
  /* Still full: nothing more lands, and each write says so. */
  assert_int_equal(ms_rlog_write(log, event("sample", n + 1, 1400)), -ENOSPC);
  assert_int_equal(ms_rlog_write(log, event("sample", n + 2, 10)), -ENOSPC);

  /* Room again: logging resumes by itself, on a fresh line. */
  assert_int_equal(unlink(filler), 0);
  assert_int_equal(ms_rlog_write(log, event("restart", n + 3, 10)), 0);
  assert_int_equal(ms_rlog_write(log, event("exit", n + 4, 10)), 0);
  ms_rlog_close(log);

  assert_string_equal(count_lines(in(fx, "log.jsonl"), &good, &bad), "exit");
  assert_int_equal(good, (int)n + 2); /* every event written whole */
  assert_int_equal(bad, 1);           /* the one the full disk cut */
}

/* RLIMIT_FSIZE cuts a write short the way a full disk does and then
 * refuses the rest with EFBIG; this runs without root.  The torn line is
 * the only loss once the limit is raised. */
static void file_size_limit_tears_one_line_then_resumes_whole(void** state) {
  fx_t* fx = *state;
  ms_rlog_t* log;
  struct rlimit old, low;
  int good, bad, err;
  assert_int_equal(ms_rlog_open(in(fx, "log.jsonl"), 0, &log), 0);
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  low = old;
  low.rlim_cur = 2000;
  signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
  assert_int_equal(ms_rlog_write(log, event("start", 1, 1000)), 0);
  err = ms_rlog_write(log, event("sample", 2, 1000)); /* lands in part */
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, SIG_DFL);
  assert_int_equal(err, -EFBIG);
  assert_int_equal(ms_rlog_write(log, event("restart", 3, 10)), 0);
  assert_int_equal(ms_rlog_write(log, event("exit", 4, 10)), 0);
  ms_rlog_close(log);
  assert_string_equal(count_lines(fx->path, &good, &bad), "exit");
  assert_int_equal(good, 3);
  assert_int_equal(bad, 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(log_is_created_0640_minus_the_umask),
      T(open_refuses_a_symlink_at_the_path),
      T(write_to_a_full_device_reports_enospc),
      T(full_disk_tears_one_line_and_logging_resumes_whole),
      T(file_size_limit_tears_one_line_then_resumes_whole),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
