/* shim.c: the exec shim every worker starts through (shim.h says what it
 * does and why), and memsup's side of it: what the shim is told. */
#include "shim.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

/* Recorded by ms_shim_init() in memsup, read when a worker is spawned. */
static char self_exe[4096];
static char ppid_arg[24];
static char ignore_arg[24];
static uint64_t ignored;
static int foreground;

void ms_listen_self_exe(char* out, size_t outlen) {
  static const char deleted[] = " (deleted)";
  ssize_t n = readlink("/proc/self/exe", out, outlen - 1);
  size_t dl = sizeof(deleted) - 1;
  if (n <= 0 || (size_t)n >= outlen - 1 ||
      ((size_t)n > dl && memcmp(out + n - dl, deleted, dl) == 0)) {
    /* Unreadable, cut, or replaced on disk since memsup started: the
     * magic link still execs memsup's own image. */
    snprintf(out, outlen, "/proc/self/exe");
    return;
  }
  out[n] = '\0';
}

void ms_shim_init(void) {
  ms_listen_self_exe(self_exe, sizeof(self_exe));
  snprintf(ppid_arg, sizeof(ppid_arg), "%d", (int)getpid());
  ignored = 0;
  for (int sig = 1; sig <= 64 && sig < NSIG; sig++) {
    struct sigaction sa;
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
      ignored |= 1ull << (sig - 1);
  }
  /* Except memsup's stop signals: memsup stops a worker by passing them
   * to its group, and an ignored one would turn every graceful stop into
   * SIGKILL after --grace.  (A shell ignores SIGINT for `cmd &`, meant for
   * the terminal's ^C, not for memsup's stop.) */
  ignored &= ~(1ull << (SIGINT - 1) | 1ull << (SIGTERM - 1));
  snprintf(ignore_arg, sizeof(ignore_arg), "%llx", (unsigned long long)ignored);
  /* The worker takes the terminal only from a memsup that has it: stdin
   * is a terminal and memsup's group is its foreground (not `memsup &`). */
  foreground = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
}

int ms_shim_foreground(void) { return foreground; }

uint64_t ms_shim_ignored(void) { return ignored; }

int ms_shim_argv(const char* resolved, char* const* worker_argv, char*** out) {
  size_t n = 0;
  while (worker_argv[n]) n++;
  char** argv = calloc(n + 11, sizeof(*argv));
  if (argv == NULL) return -ENOMEM;
  size_t k = 0;
  argv[k++] = self_exe;
  argv[k++] = MS_EXEC_SHIM_ARG;
  argv[k++] = "--ppid";
  argv[k++] = ppid_arg;
  if (ignored) {
    argv[k++] = "--ignore";
    argv[k++] = ignore_arg;
  }
  if (foreground) argv[k++] = "--foreground";
  argv[k++] = "--";
  argv[k++] = (char*)resolved;
  for (size_t i = 0; i < n; i++) argv[k++] = worker_argv[i];
  *out = argv;
  return 0;
}

int ms_listen_shim_argv(const char* self, const char* resolved,
                        char* const* worker_argv, char*** out) {
  size_t n = 0;
  while (worker_argv[n]) n++;
  char** argv = calloc(n + 4, sizeof(*argv));
  if (argv == NULL) return -ENOMEM;
  argv[0] = (char*)self;
  argv[1] = MS_EXEC_SHIM_ARG;
  argv[2] = (char*)resolved;
  for (size_t i = 0; i < n; i++) argv[3 + i] = worker_argv[i];
  *out = argv;
  return 0;
}

/* ---- the shim, in the child ------------------------------------------- */

static int usage(void) {
  fprintf(stderr,
          "memsup: %s is for memsup's own use: %s [--ppid PID] "
          "[--ignore HEX] [--foreground] -- PATH ARGV0 [ARG...]\n",
          MS_EXEC_SHIM_ARG, MS_EXEC_SHIM_ARG);
  return 100;
}

/* Takes the terminal's foreground for a new process group of its own.
 * From a background group tcsetpgrp() raises SIGTTOU unless it is
 * ignored, so it is for the call.  Failing is not fatal: the worker runs,
 * without job control, as it would have before. */
static void take_terminal(void) {
  if (setpgid(0, 0) < 0) return;
  struct sigaction ign, old;
  memset(&ign, 0, sizeof(ign));
  ign.sa_handler = SIG_IGN;
  sigaction(SIGTTOU, &ign, &old);
  if (tcsetpgrp(STDIN_FILENO, getpgrp()) < 0)
    fprintf(stderr, "memsup: give the terminal to the worker: %s\n",
            strerror(errno));
  sigaction(SIGTTOU, &old, NULL);
}

int ms_exec_shim_main(int argc, char** argv) {
  long ppid = 0;
  uint64_t ign = 0;
  int fg = 0, i = 2;
  if (argc < 4 || strcmp(argv[1], MS_EXEC_SHIM_ARG) != 0) return usage();
  /* Options until "--"; the short form starts with PATH at once. */
  if (argv[i][0] == '-') {
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
      char* end;
      if (strcmp(argv[i], "--ppid") == 0 && i + 1 < argc) {
        ppid = strtol(argv[++i], &end, 10);
        if (*end || ppid <= 0) return usage();
      } else if (strcmp(argv[i], "--ignore") == 0 && i + 1 < argc) {
        ign = strtoull(argv[++i], &end, 16);
        if (*end) return usage();
      } else if (strcmp(argv[i], "--foreground") == 0) {
        fg = 1;
      } else {
        return usage();
      }
    }
    i++; /* the "--" */
  }
  if (argc - i < 2) return usage();

  if (ppid) {
    /* The worker dies with memsup.  memsup may have died between fork and
     * here: then this process was already re-parented and the prctl came
     * too late. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
      fprintf(stderr, "memsup: PR_SET_PDEATHSIG: %s\n", strerror(errno));
      return 126;
    }
    if (getppid() != (pid_t)ppid) raise(SIGKILL);
  }
  if (fg) take_terminal();
  for (int sig = 1; sig <= 64 && sig < NSIG; sig++)
    if ((ign >> (sig - 1) & 1) && sig != SIGKILL && sig != SIGSTOP)
      signal(sig, SIG_IGN);
  if (getenv("LISTEN_FDS")) {
    char pid[24];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    if (setenv("LISTEN_PID", pid, 1) < 0) {
      fprintf(stderr, "memsup: set LISTEN_PID: %s\n", strerror(errno));
      return 126;
    }
  }
  execv(argv[i], argv + i + 1);
  int e = errno;
  fprintf(stderr, "memsup: exec %s: %s\n", argv[i], strerror(e));
  return e == ENOENT ? 127 : 126;
}
