/* supervise.h: the supervisor: one worker at a time, its restarts, and
 * memsup's own signals.  main.c creates it, runs the loop and asks it for
 * the exit code. */
#ifndef MS_SUPERVISE_H
#define MS_SUPERVISE_H

#include <uv.h>

#include "config.h"
#include "restartlog.h"

typedef struct ms_sup_s ms_sup_t;

/* Creates the supervisor on loop.  cfg, log (--log) and slog
 * (--sample-log) are borrowed and must outlive it; either log may be NULL.
 * Returns 0 or -errno. */
int ms_sup_create(uv_loop_t* loop, const ms_config_t* cfg, ms_rlog_t* log,
                  ms_rlog_t* slog, ms_sup_t** out);
/* Starts the first worker and the sampling tick.  Returns 0, or the
 * process exit code to use when even the first worker cannot start (127
 * not found, 126 not executable, 111 other failure). */
int ms_sup_start(ms_sup_t* sup);
/* The exit code once uv_run() has returned. */
int ms_sup_exit_code(const ms_sup_t* sup);
/* Frees the supervisor; every handle is closed by then. */
void ms_sup_destroy(ms_sup_t* sup);

#endif
