/* cgroup.h: memsup's own memory cgroup, read cheaply at any time.
 *
 * memsup finds its group once (from /proc/self/cgroup: the v2 unified
 * group when it has memory.max, else the v1 memory controller's group),
 * opens the few small files it needs once, and reads them with pread: a
 * read never blocks and costs a few microseconds, so a metrics scrape or
 * a worker's exit can ask.  v2: memory.current, memory.max,
 * memory.events ("oom", "oom_kill").  v1: memory.usage_in_bytes,
 * memory.limit_in_bytes, memory.oom_control ("oom_kill", kernel >= 4.13).
 * The parsers are pure and split from the readers so fixture files test
 * them.
 */
#ifndef MS_CGROUP_H
#define MS_CGROUP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int version;     /* 1 or 2; 0: no memory cgroup found (files closed) */
  int fd_usage;    /* memory.current / memory.usage_in_bytes, or -1 */
  int fd_limit;    /* memory.max / memory.limit_in_bytes, or -1 */
  int fd_events;   /* memory.events / memory.oom_control, or -1 */
  char dir[4096];  /* the group's directory, for messages */
} ms_cgroup_t;

/* One read.  A has_* flag is 0 when its file is missing or unreadable. */
typedef struct {
  int has_usage;
  uint64_t usage;    /* bytes charged to the group now */
  int has_limit;     /* 0 also when the group has no limit ("max") */
  uint64_t limit;
  int has_oom_kill;
  uint64_t oom_kill; /* processes the OOM killer killed in the group */
  uint64_t oom;      /* v2 "oom": times the group hit its limit and OOMed */
} ms_cgroup_read_t;

/* Pure: finds the v1 memory group and the v2 group in the text of a
 * /proc/PID/cgroup file ("id:controllers:path" lines).  Either out is ""
 * when absent. */
void ms_cgroup_parse_self(const char* text, char* v1, size_t v1len, char* v2,
                          size_t v2len);

/* Pure: a limit or usage file's text: a number, or "max" (v2) as
 * UINT64_MAX.  Returns 0 or -EINVAL. */
int ms_cgroup_parse_value(const char* text, uint64_t* out);

/* Pure: the value of "key N" in a flat keyed file (memory.events,
 * memory.oom_control).  Returns 0, -ENOENT (no such key) or -EINVAL. */
int ms_cgroup_parse_key(const char* text, const char* key, uint64_t* out);

/* True when v is "no limit" (v2 "max", v1's page-rounded LLONG_MAX). */
int ms_cgroup_unlimited(uint64_t v);

/* Finds memsup's group under root ("/sys/fs/cgroup"; a test passes a
 * fixture tree) from proc_self_cgroup and opens its files.  Falls back to
 * the mount's top group when the named directory is missing (inside a
 * container the mount is the container's group while /proc/self/cgroup
 * names the host path).  Returns 0 (cg->version 1 or 2) or -ENOENT when
 * there is no memory cgroup; cg is always safe to read and close. */
int ms_cgroup_open(ms_cgroup_t* cg, const char* root,
                   const char* proc_self_cgroup);

/* Reads the open files now.  Never blocks on anything but these small
 * kernel files. */
void ms_cgroup_read(const ms_cgroup_t* cg, ms_cgroup_read_t* out);

void ms_cgroup_close(ms_cgroup_t* cg);

#endif
