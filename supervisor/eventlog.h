/* eventlog.h: what the machine's LOG actions write: the JSON line of the
 * restart log (--log) or sample log (--sample-log), and the human line on
 * stderr.  Figures come from the machine's records; the files themselves
 * are restartlog.h's.  Line formats: docs/restart-log.md. */
#ifndef MS_EVENTLOG_H
#define MS_EVENTLOG_H

#include "config.h"
#include "machine.h"
#include "restartlog.h"

typedef struct {
  const ms_config_t* cfg;
  ms_rlog_t* rlog;     /* --log, may be NULL */
  ms_rlog_t* slog;     /* --sample-log, may be NULL */
  int rlog_failed, slog_failed; /* a write failed (said once) */
  unsigned hold_warned; /* restart whose "hold" was said on stderr */
  const char* cgroup;   /* memsup's memory cgroup directory, or NULL */
  int slot;             /* the pool's slot (--workers > 1), -1 none: then
                           lines have no "slot" key */
} ms_eventlog_t;

/* Writes what l asks for; m is the machine that asked (its records are
 * read, not changed).  Write errors are reported once per file on stderr;
 * supervision goes on without the file. */
void ms_eventlog_write(ms_eventlog_t* el, const ms_machine_t* m,
                       const ms_log_t* l);

/* Without --tree: the worker's descendants hold far more than the worker
 * (d, from ms_sampler_descendants()): one "descendants" line and a warning
 * that suggests --tree. */
void ms_eventlog_descendants(ms_eventlog_t* el, pid_t pid, unsigned gen,
                             uint64_t footprint, const ms_descendants_t* d);

/* "SIGTERM" for 15, "SIG99" for a signal without a name.  Static buffer. */
const char* ms_signame(int sig);

#endif
