/* main.c: memsup's entry point, a list of steps: keep inherited
 * descriptors from the worker, parse the command line, open the restart
 * log, check the state directory, run the supervisor on a libuv loop, tear
 * down, exit with the worker's status.
 * Exit codes: 0, 100 usage/config, 111 system failure, 126/127 exec, else
 * the worker's own status (128+N for signal N). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "config.h"
#include "handoff.h"
#include "listen.h"
#include "log.h"
#include "report.h"
#include "restartlog.h"
#include "shim.h"
#include "supervise.h"

#define EXIT_USAGE 100
#define EXIT_SYSTEM 111

/* Marks every descriptor above 2 close-on-exec.  Whatever memsup inherited
 * without the flag (a caller's leaked pipe or socket, fds 10 and 251 from
 * a shell were seen) would otherwise pass through memsup into every
 * worker: the worker must see only 0, 1, 2 and its channel (fd 3).  They
 * are marked, not closed, because memsup cannot know who else relies on
 * them (a sanitizer or valgrind keeps its own); a pipe's writer held here
 * stays open until memsup exits, exactly as without memsup.  Returns 0 or
 * -errno. */
static int cloexec_inherited(void) {
  struct dirent* e;
  DIR* d;
  int fd, flags;

  /* Linux 5.11+: one call.  Older kernels say ENOSYS or EINVAL. */
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
  d = opendir("/proc/self/fd");
  if (d == NULL) return -errno;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    fd = atoi(e->d_name);
    if (fd <= 2 || fd == dirfd(d)) continue;
    flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC))
      fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
  closedir(d);
  return 0;
}

/* Why a log path could not be opened, in words: ELOOP from O_NOFOLLOW is
 * "Too many levels of symbolic links", which hides the reason. */
static const char* open_reason(int err) {
  if (err == -ELOOP) return "it is a symbolic link (refused: give the real path)";
  return strerror(-err);
}

int main(int argc, char** argv) {
  ms_config_t cfg;
  char err[256];
  ms_rlog_t *rlog = NULL, *slog = NULL;
  ms_sup_t* sup = NULL;
  uv_loop_t loop;
  int code, r;

  /* First of all: as the exec shim memsup must not touch the descriptors
   * (the worker's sockets and channel) or signal dispositions (SIG_IGN
   * survives exec) before it execs the worker.  shim.h says why. */
  if (argc > 1 && strcmp(argv[1], MS_EXEC_SHIM_ARG) == 0)
    return ms_exec_shim_main(argc, argv);
  if (argc > 1 && strcmp(argv[1], "report") == 0)
    return ms_report_main(argc - 1, argv + 1);
  /* Before any disposition changes: the ignored signals to pass on. */
  ms_shim_init();
  if ((r = cloexec_inherited()) < 0)
    ms_warn("mark inherited descriptors close-on-exec: %s (workers may "
            "inherit them)", strerror(-r));
  /* memsup writes to a stderr that may be a pipe whose reader has gone (a
   * log shipper restarting): that must not kill the supervisor.  Workers
   * get default dispositions back from uv_spawn. */
  signal(SIGPIPE, SIG_IGN);
  r = ms_config_parse(argc, argv, &cfg, "/sys/fs/cgroup", err, sizeof(err));
  if (r == MS_CONFIG_HELP) {
    fputs(ms_usage, stdout);
    return 0;
  }
  if (r == MS_CONFIG_VERSION) {
    printf("memsup %s\n", MEMSUP_VERSION);
    return 0;
  }
  if (r < 0) {
    ms_error("%s", err);
    return EXIT_USAGE;
  }
  ms_log_set_verbosity(cfg.verbosity);

  r = ms_rlog_open(cfg.log_path, cfg.log_max, &rlog);
  if (r < 0) {
    ms_error("open log %s: %s", cfg.log_path, open_reason(r));
    return EXIT_USAGE;
  }
  r = ms_rlog_open(cfg.sample_log_path, cfg.sample_log_max, &slog);
  if (r < 0) {
    ms_error("open sample log %s: %s", cfg.sample_log_path, open_reason(r));
    ms_rlog_close(rlog);
    return EXIT_USAGE;
  }
  if (cfg.state_dir && (r = ms_state_dir_prepare(cfg.state_dir)) < 0) {
    ms_error("state directory %s: %s", cfg.state_dir, strerror(-r));
    ms_rlog_close(rlog);
    ms_rlog_close(slog);
    return EXIT_USAGE;
  }
  if (cfg.state_dir && ms_state_dir_loose(cfg.state_dir))
    ms_warn("state directory %s is writable by %s: anyone who can write "
            "there can replace the state a new worker loads (chmod go-w it)",
            cfg.state_dir,
            ms_state_dir_loose(cfg.state_dir) & S_IWOTH ? "everyone"
                                                        : "its group");

  r = uv_loop_init(&loop);
  if (r < 0) {
    ms_error("create event loop: %s", uv_strerror(r));
    ms_rlog_close(rlog);
    ms_rlog_close(slog);
    return EXIT_SYSTEM;
  }
  r = ms_sup_create(&loop, &cfg, rlog, slog, &sup);
  if (r < 0) {
    ms_error("create supervisor: %s", strerror(-r));
    code = EXIT_SYSTEM;
    goto end;
  }

  code = ms_sup_start(sup);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (code == 0) code = ms_sup_exit_code(sup);

end:
  ms_sup_destroy(sup);
  /* Every handle is closed by now; a non-zero result here is a bug (a
   * handle leaked), worth knowing about in the tests. */
  if (uv_loop_close(&loop) != 0) {
    ms_error("event loop still has open handles at exit");
    if (code == 0) code = EXIT_SYSTEM;
  }
  ms_rlog_close(rlog);
  ms_rlog_close(slog);
  return code;
}
