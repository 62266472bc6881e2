/* config.h: memsup's command line, parsed into one ms_config_t.
 * Parsing is pure (no I/O except the cgroup lookup for "N%" limits) and
 * prints nothing: the caller prints the message and picks the exit code.
 */
#ifndef MS_CONFIG_H
#define MS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* --workers' upper bound: a pool is a handful of processes per core. */
#define MS_WORKERS_MAX 64

typedef enum { MS_METRIC_FOOTPRINT = 0, MS_METRIC_RSS, MS_METRIC_HEAP } ms_metric_t;
typedef enum { MS_RESTART_ON_FAILURE = 0, MS_RESTART_ALWAYS } ms_restart_mode_t;

typedef struct {
  uint64_t limit;        /* hard limit in bytes; 0 = none (never restart for memory) */
  uint64_t soft_limit;   /* purge request threshold in bytes; 0 = none */
  ms_metric_t metric;    /* default footprint */
  uint64_t interval_ns;  /* sampling period, default 50 ms */
  uint64_t for_ns;       /* limit must hold this long, default 0 */
  uint64_t grace_ns;     /* SIGTERM -> SIGKILL, and save timeout; default 10 s */
  unsigned max_restarts; /* crash restarts allowed ... default 5 */
  uint64_t within_ns;    /* ... within this window, default 60 s */
  ms_restart_mode_t restart;
  int tree;              /* --tree */
  int subreaper;         /* --subreaper (implied when memsup is PID 1) */
  int verbosity;         /* -1 quiet, 0 normal, 1.. verbose */
  int dry_run;           /* --dry-run: never restart, log what would happen */
  const char* log_path;  /* --log FILE, NULL = none */
  const char* sample_log_path; /* --sample-log FILE, NULL = none */
  uint64_t sample_every_ns;    /* --sample-every, default 1 s */
  uint64_t sample_log_max;     /* --sample-log-max, default 64 MiB */
  uint64_t log_max;            /* --log-max, default 64 MiB */
  const char* state_dir; /* --state-dir DIR, NULL = none */
  const char* metrics;   /* --metrics [ADDR:]PORT (checked), NULL = none */
  const char* listen[64]; /* --listen [ADDR:]PORT (checked), repeatable */
  size_t nlisten;
  uint64_t max_state;    /* --max-state, default 1 GiB */
  uint64_t handshake_ns; /* --handshake-timeout, default 5 s */
  long watch_pid;        /* --pid PID (memsup watch): sample, never restart */
  unsigned workers;      /* --workers N: slots in the pool, 1..64, default 1 */
  char** argv;           /* worker argv, NULL-terminated, points into main's argv */
  int argc;
} ms_config_t;

/* What ms_config_parse() found: run, or print help/version and exit 0. */
enum { MS_CONFIG_RUN = 0, MS_CONFIG_HELP = 1, MS_CONFIG_VERSION = 2 };

/* Fills cfg from argv (defaults first): "memsup [options] -- command ..."
 * or "memsup watch --pid PID [options]".  Returns MS_CONFIG_RUN/HELP/
 * VERSION, or -EINVAL with a one-line reason naming the flag (no "memsup:"
 * prefix, no newline) in err; it never exits or prints.  Every numeric
 * value is range-checked (sizes up to 8192T, durations up to 720h,
 * --max-restarts 1..10000, --workers 1..64, --pid 1..4194304).  Uses getopt_long(), whose
 * state is global: not reentrant.  cgroup_root is "/sys/fs/cgroup" except
 * in tests. */
int ms_config_parse(int argc, char** argv, ms_config_t* cfg,
                    const char* cgroup_root, char* err, size_t errlen);

/* "128M", "1.5G", "4096", "64KiB": binary units.  0 and negatives are
 * rejected.  Returns 0 or -EINVAL / -ERANGE. */
int ms_parse_size(const char* s, uint64_t* out);
/* "50ms", "10s", "2m", "1.5s"; a bare number is seconds.  zero_ok says
 * whether "0" is allowed.  Returns 0 or -EINVAL / -ERANGE. */
int ms_parse_duration(const char* s, int zero_ok, uint64_t* out_ns);
/* Memory limit of memsup's own cgroup (v2 memory.max, v1
 * memory.limit_in_bytes) found through /proc/self/cgroup under
 * cgroup_root.  Returns 0, -ENOENT when no limit is set ("max" or the v1
 * "unlimited" value), or another -errno when it cannot be read. */
int ms_cgroup_limit(const char* cgroup_root, const char* proc_self_cgroup,
                    uint64_t* out);

/* The --help text. */
extern const char ms_usage[];

#endif
