/* it_signals.c: memsup as a container init would be held to (the cases
 * tini's and dumb-init's behaviour tests check, written fresh): signals
 * it does not act on reach the worker and never kill memsup, job-control
 * signals never stop it, orphans are reaped when the subreaper bit came
 * with memsup, an interactive worker gets the terminal, and what the
 * caller ignored stays ignored for the worker.
 * Timings only bound waiting; no test asserts how long something took.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define BLOAT h_example("bloat")

static int running(h_run_t* h) {
  return h->pid > 0 && waitpid(h->pid, NULL, WNOHANG) == 0;
}

static int wait_file_has(const char* path, const char* needle, int ms) {
  for (int t = 0; t < h_ms(ms); t += 20) {
    char* s = h_read_file(path);
    int found = s && strstr(s, needle) != NULL;
    free(s);
    if (found) return 1;
    h_sleep_ms(20);
  }
  return 0;
}

/* A bash worker that writes the name of every signal it traps to a file,
 * as a service logs the signals it handles. */
static void start_trapping(h_run_t* h, const char* file, const char* sigs) {
  char script[2048];
  snprintf(script, sizeof(script),
           "for s in %s; do eval \"trap 'echo $s >> %s' $s\"; done; "
           "echo ready >> %s; while :; do sleep 0.05; done",
           sigs, file, file);
  h_start(h, "--log", h->log, "--", "bash", "-c", script, NULL);
  assert_true(wait_file_has(file, "ready", 10000));
}

/* memsup died of each of these (default action) and left the worker
 * running unsupervised; tini and dumb-init forward them. */
static void unhandled_signals_reach_the_worker_and_memsup_lives(void** state) {
  h_run_t* h = *state;
  static const struct { int sig; const char* name; } sigs[] = {
      {SIGALRM, "ALRM"}, {SIGSTKFLT, "STKFLT"}, {SIGXCPU, "XCPU"},
      {SIGXFSZ, "XFSZ"}, {SIGVTALRM, "VTALRM"}, {SIGPROF, "PROF"},
      {SIGIO, "IO"},     {SIGPWR, "PWR"},       {SIGSYS, "SYS"},
      {SIGWINCH, "WINCH"}, {SIGHUP, "HUP"},     {SIGUSR1, "USR1"},
  };
  const char* file = h_path(h, "signals");
  start_trapping(h, file,
                 "ALRM STKFLT XCPU XFSZ VTALRM PROF IO PWR SYS WINCH HUP "
                 "USR1 RTMIN RTMIN+3 RTMAX");
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
    h_signal(h, sigs[i].sig);
    char want[32];
    snprintf(want, sizeof(want), "%s\n", sigs[i].name);
    if (!wait_file_has(file, want, 5000)) fail_msg("%s not forwarded", sigs[i].name);
    assert_true(running(h));
  }
  int rt[] = {SIGRTMIN, SIGRTMIN + 3, SIGRTMAX};
  const char* rtname[] = {"RTMIN\n", "RTMIN+3\n", "RTMAX\n"};
  for (int i = 0; i < 3; i++) {
    h_signal(h, rt[i]);
    if (!wait_file_has(file, rtname[i], 5000)) fail_msg("%s not forwarded", rtname[i]);
  }
  assert_true(running(h));
  assert_int_equal(h_count(h, "crash"), 0); /* the same worker throughout */
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 128 + SIGTERM);
}

/* SIGTSTP is forwarded (the worker stops, as under tini); SIGTTIN and
 * SIGTTOU are ignored; memsup itself never stops, and still stops the
 * worker when told to. */
static void job_control_signals_never_stop_memsup(void** state) {
  h_run_t* h = *state;
  const char* file = h_path(h, "signals");
  start_trapping(h, file, "TSTP TTIN TTOU");
  h_signal(h, SIGTSTP);
  assert_true(wait_file_has(file, "TSTP\n", 5000));
  h_signal(h, SIGTTIN);
  h_signal(h, SIGTTOU);
  h_sleep_ms(300);
  assert_true(h_proc_state(h->pid) != 'T');
  char* s = h_read_file(file);
  assert_null(strstr(s, "TTIN"));
  assert_null(strstr(s, "TTOU"));
  free(s);
  assert_true(running(h));
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 128 + SIGTERM);
}

static void set_subreaper(void) { prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

/* The subreaper bit survives exec: a parent that set it and exec'd memsup
 * (tini's reaping test runs so) sends memsup the orphans, without
 * --subreaper.  Each must be reaped, not left a zombie. */
static void orphans_are_reaped_with_an_inherited_subreaper_bit(void** state) {
  h_run_t* h = *state;
  h_pre_exec = set_subreaper;
  h_start(h, "--log", h->log, "--", BLOAT, "--mode", "idle", "--orphan", NULL);
  h_pre_exec = NULL;
  /* The orphan exits 200 ms after its parent: then it is memsup's. */
  int zombies = 0;
  for (int t = 0; t < h_ms(3000); t += 100) {
    h_sleep_ms(100);
    pid_t kids[64];
    int n = h_children(h->pid, kids, 64);
    zombies = 0;
    for (int i = 0; i < n; i++) zombies += h_proc_state(kids[i]) == 'Z';
    if (t >= 1000 && zombies == 0) break;
  }
  assert_int_equal(zombies, 0);
  assert_true(running(h));
  h_signal(h, SIGTERM);
  h_wait(h, 15000);
}

static void ignore_hup_and_int(void) {
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN); /* as `cmd &` in a script */
}

/* Under nohup the worker ignores SIGHUP too (libuv resets dispositions in
 * the child; the shim ignores again what memsup inherited ignored), except
 * memsup's stop signals (SIGINT here), which must stop the worker. */
static void inherited_ignored_signals_stay_ignored_for_the_worker(
    void** state) {
  h_run_t* h = *state;
  h_pre_exec = ignore_hup_and_int;
  h_start(h, "--log", h->log, "--", "grep", "^SigIgn", "/proc/self/status",
          NULL);
  h_pre_exec = NULL;
  assert_int_equal(h_wait(h, 10000), 0);
  char* out = h_read_file(h->out);
  assert_non_null(out);
  unsigned long long mask = 0;
  assert_int_equal(sscanf(strstr(out, "SigIgn:"), "SigIgn: %llx", &mask), 1);
  free(out);
  assert_true(mask & (1ull << (SIGHUP - 1)));
  assert_false(mask & (1ull << (SIGINT - 1)));
  assert_false(mask & (1ull << (SIGPIPE - 1))); /* memsup's own, not passed */
}

/* Runs memsup -- bash --norc -mc script with a new pty as its controlling
 * terminal (stdin, stdout, stderr), as a shell in a terminal would; after
 * send_after_ms (>= 0) writes send to the terminal.  Fills buf with what
 * the terminal showed; returns memsup's wait status, or -1 if it did not
 * end in time (then it is killed). */
static int run_in_pty(h_run_t* h, const char* script, int send_after_ms,
                      const char* send, char* buf, size_t bufsz) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  assert_true(master >= 0);
  assert_int_equal(grantpt(master), 0);
  assert_int_equal(unlockpt(master), 0);
  char* slave = ptsname(master);
  assert_non_null(slave);
  const char* bin = getenv("MEMSUP_BIN") ? getenv("MEMSUP_BIN") : "build/memsup";
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    int fd = open(slave, O_RDWR);
    if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0) _exit(111);
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2) close(fd);
    execl(bin, bin, "--log", h->log, "--", "bash", "--norc", "-mc", script,
          (char*)NULL);
    _exit(111);
  }
  assert_true(pid > 0);
  size_t len = 0;
  int st = -1, sent = 0;
  for (int t = 0; t < h_ms(10000); t += 20) {
    struct pollfd p = {master, POLLIN, 0};
    while (poll(&p, 1, 0) > 0 && len < bufsz - 1) {
      ssize_t n = read(master, buf + len, bufsz - 1 - len);
      if (n <= 0) break;
      len += (size_t)n;
    }
    if (waitpid(pid, &st, WNOHANG) == pid) break;
    st = -1;
    if (send_after_ms >= 0 && !sent && t >= send_after_ms) {
      sent = write(master, send, strlen(send)) > 0;
    }
    h_sleep_ms(20);
  }
  buf[len] = '\0';
  close(master);
  if (st == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  return st;
}

/* bash -m under memsup on a real terminal: it gets job control (the
 * terminal's foreground), so it prints no "cannot set terminal process
 * group" / "no job control", its tty is the pty, and a background job
 * runs and is waited for. */
static void interactive_worker_gets_the_terminal(void** state) {
  h_run_t* h = *state;
  char buf[8192];
  int st = run_in_pty(h, "tty; sleep 0.2 & wait; echo job-done", -1, "", buf,
                      sizeof(buf));
  if (st == -1) fail_msg("memsup did not end: %s", buf);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  if (strstr(buf, "cannot set terminal process group") ||
      strstr(buf, "no job control"))
    fail_msg("bash got no terminal:\n%s", buf);
  assert_non_null(strstr(buf, "/dev/pts/"));
  assert_non_null(strstr(buf, "job-done"));
}

/* ^C on that terminal reaches the worker's group (memsup is not in it):
 * memsup ends with the interrupted worker (130) instead of restarting it. */
static void ctrl_c_on_the_terminal_ends_memsup_with_the_worker(void** state) {
  h_run_t* h = *state;
  char buf[8192];
  int st = run_in_pty(h, "echo started; sleep 30", 1000, "\003", buf,
                      sizeof(buf));
  if (st == -1) fail_msg("memsup did not end after ^C: %s", buf);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 128 + SIGINT);
  assert_non_null(strstr(buf, "started"));
  assert_int_equal(h_count(h, "crash"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, h_setup, h_teardown)
      T(unhandled_signals_reach_the_worker_and_memsup_lives),
      T(job_control_signals_never_stop_memsup),
      T(orphans_are_reaped_with_an_inherited_subreaper_bit),
      T(inherited_ignored_signals_stay_ignored_for_the_worker),
      T(interactive_worker_gets_the_terminal),
      T(ctrl_c_on_the_terminal_ends_memsup_with_the_worker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
