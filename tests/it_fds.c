/* it_fds.c: what a worker inherits.  A worker must see exactly fds 0, 1,
 * 2 and its channel (3): no copy of the state memfd memsup holds while it
 * stores a state in --state-dir, and none of the descriptors memsup itself
 * inherited.  Checked from outside, by listing /proc/WORKER/fd of every
 * worker memsup starts.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KV h_example("kvcache")
#define BLOAT h_example("bloat")
#define MAX_SEEN 64

typedef struct {
  pid_t seen[MAX_SEEN]; /* workers already listed */
  int nseen;
  int checked; /* workers whose fds were listed after their exec */
} fds_t;

/* 1 when pid runs comm (after its exec; between libuv's fork and exec a
 * worker is still a copy of memsup with memsup's descriptors). */
static int runs(pid_t pid, const char* comm) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
  char* s = h_read_file(path);
  int yes = s && strncmp(s, comm, strlen(comm)) == 0;
  free(s);
  return yes;
}

/* The descriptors of pid other than 0-3, as " N -> target;" into out
 * (empty when none); *have gets a bit per fd 0-3 present.  Returns 0 when
 * the process is gone. */
static int extras(pid_t pid, char* out, size_t len, int* have) {
  char path[64], link[384], target[256];
  struct dirent* e;
  snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
  out[0] = '\0';
  *have = 0;
  DIR* d = opendir(path);
  if (d == NULL) return 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd >= 0 && fd <= 3) {
      *have |= 1 << fd;
      continue;
    }
    snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    target[n > 0 ? n : 0] = '\0';
    size_t used = strlen(out);
    snprintf(out + used, len - used, " %d -> %s;", fd, target);
  }
  closedir(d);
  /* A process that exited while we read lists nothing. */
  return *have != 0 || out[0] != '\0';
}

/* Fails the test when pid holds a descriptor other than 0-3 that stays
 * (an inherited one stays for the worker's whole life; the dynamic
 * loader's own brief opens of shared libraries right after exec do not),
 * or lacks one of 0-3.  Returns 0 when the process was gone too soon. */
static int check_fds(pid_t pid) {
  char first[2048], again[2048];
  int have, have2;
  if (!extras(pid, first, sizeof(first), &have)) return 0;
  if (first[0] != '\0') {
    h_sleep_ms(100);
    if (!extras(pid, again, sizeof(again), &have2)) return 0;
    /* What is in both listings, by number and target. */
    for (char* p = first; *p;) {
      char* end = strchr(p, ';');
      size_t n = (size_t)(end - p + 1);
      char one[512];
      snprintf(one, sizeof(one), "%.*s", (int)n, p);
      if (strstr(again, one))
        fail_msg("worker %d inherited a descriptor:%s", (int)pid, one);
      p += n;
    }
  }
  if (have != 0xf)
    fail_msg("worker %d lacks one of fds 0-3 (mask %x)", (int)pid, have);
  return 1;
}

/* Lists the descriptors of each new worker of memsup (running comm) until
 * want workers were checked or timeout_ms passed; returns how many. */
static int check_workers(h_run_t* h, fds_t* f, const char* comm, int want,
                         int timeout_ms) {
  pid_t kids[16];
  for (int t = 0; t < h_ms(timeout_ms) && f->checked < want; t += 5) {
    int n = h_children(h->pid, kids, 16);
    for (int i = 0; i < n; i++) {
      int known = 0;
      for (int k = 0; k < f->nseen; k++) known |= f->seen[k] == kids[i];
      if (known || !runs(kids[i], comm)) continue;
      if (f->nseen < MAX_SEEN) f->seen[f->nseen++] = kids[i];
      f->checked += check_fds(kids[i]);
    }
    h_sleep_ms(5);
  }
  return f->checked;
}

static void stop(h_run_t* h) {
  h_signal(h, SIGTERM);
  h_wait(h, 15000);
}

/* A state-saving worker under --state-dir, restarted for memory again and
 * again: each restart stores the saved state on a work thread while the
 * next worker starts.  With a plain dup() of the state memfd a third of
 * the workers held "/memfd:memsup-state (deleted)". */
static void workers_under_state_dir_see_only_0_to_3(void** state) {
  h_run_t* h = *state;
  fds_t f = {0};
  char dir[400];
  snprintf(dir, sizeof(dir), "%s/state-dir", h->dir);
  h_start(h, "--limit", "40M", "--state-dir", dir, "--log", h->log, "--", KV,
          "--leak-mib-per-s", "64", NULL);
  /* Lives of 0.6 s are under the 4 s over which a restart is judged: each
   * restart "did not help" and the next comes through the hold once the
   * worker has kept growing for 5 s, so a worker lives about 6 s. */
  int n = check_workers(h, &f, "kvcache", 12, 90000);
  assert_true(h_count(h, "restart") >= 6);
  stop(h);
  if (n < 12) fail_msg("only %d workers could be listed", n);
}

/* memsup started with descriptors open without close-on-exec (a shell's
 * "exec 10<file", a leaky parent): they do not reach its workers, first
 * or restarted. */
static void descriptors_memsup_inherited_do_not_reach_workers(void** state) {
  h_run_t* h = *state;
  fds_t f = {0};
  int pfd[2];
  int null = open("/dev/null", O_RDONLY);
  assert_true(null >= 0);
  assert_int_equal(pipe(pfd), 0); /* no O_CLOEXEC, on purpose */
  assert_int_equal(dup2(null, 10), 10);
  assert_int_equal(dup2(null, 251), 251);
  assert_int_equal(dup2(pfd[1], 40), 40);
  h_start(h, "--limit", "40M", "--log", h->log, "--", BLOAT, "--mode", "leak",
          "--rate", "64", NULL);
  close(10);
  close(251);
  close(40);
  close(null);
  close(pfd[0]);
  close(pfd[1]);
  int n = check_workers(h, &f, "bloat", 4, 20000);
  stop(h);
  if (n < 4) fail_msg("only %d workers could be listed", n);
}

/* The same with the state machinery on: an SDK worker and --state-dir. */
static void inherited_descriptors_and_state_dir_together(void** state) {
  h_run_t* h = *state;
  fds_t f = {0};
  char dir[400];
  int null = open("/dev/null", O_RDONLY);
  assert_true(null >= 0);
  assert_int_equal(dup2(null, 17), 17);
  snprintf(dir, sizeof(dir), "%s/state-dir", h->dir);
  h_start(h, "--limit", "40M", "--state-dir", dir, "--log", h->log, "--", KV,
          "--leak-mib-per-s", "64", NULL);
  close(17);
  close(null);
  int n = check_workers(h, &f, "kvcache", 6, 30000);
  stop(h);
  if (n < 6) fail_msg("only %d workers could be listed", n);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_setup, h_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(workers_under_state_dir_see_only_0_to_3),
      T(descriptors_memsup_inherited_do_not_reach_workers),
      T(inherited_descriptors_and_state_dir_together),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
