/* main.c: memsup's entry point, a list of steps: parse the command line,
 * open the restart log, check the state directory, run the supervisor on
 * a libuv loop, tear down, exit with the worker's status.
 * Exit codes: 0, 100 usage/config, 111 system failure, 126/127 exec, else
 * the worker's own status (128+N for signal N). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "config.h"
#include "handoff.h"
#include "log.h"
#include "report.h"
#include "restartlog.h"
#include "supervise.h"

#define EXIT_USAGE 100
#define EXIT_SYSTEM 111

int main(int argc, char** argv) {
  ms_config_t cfg;
  char err[256];
  ms_rlog_t *rlog = NULL, *slog = NULL;
  ms_sup_t* sup = NULL;
  uv_loop_t loop;
  int code, r;

  if (argc > 1 && strcmp(argv[1], "report") == 0)
    return ms_report_main(argc - 1, argv + 1);
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

  r = ms_rlog_open(cfg.log_path, 0, &rlog);
  if (r < 0) {
    ms_error("open log %s: %s", cfg.log_path, strerror(-r));
    return EXIT_USAGE;
  }
  r = ms_rlog_open(cfg.sample_log_path, cfg.sample_log_max, &slog);
  if (r < 0) {
    ms_error("open sample log %s: %s", cfg.sample_log_path, strerror(-r));
    ms_rlog_close(rlog);
    return EXIT_USAGE;
  }
  if (cfg.state_dir && (r = ms_state_dir_prepare(cfg.state_dir)) < 0) {
    ms_error("state directory %s: %s", cfg.state_dir, strerror(-r));
    ms_rlog_close(rlog);
    ms_rlog_close(slog);
    return EXIT_USAGE;
  }

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
