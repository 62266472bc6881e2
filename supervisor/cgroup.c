/* cgroup.c: memsup's own memory cgroup (cgroup.h). */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cgroup v1 reports "no limit" as a page-rounded LLONG_MAX; anything this
 * large is no limit (config.c uses the same bound). */
#define CG_UNLIMITED (1ULL << 62)

int ms_cgroup_unlimited(uint64_t v) { return v >= CG_UNLIMITED; }

/* Does the comma-separated controller list [s, end) name "memory"? */
static int has_memory(const char* s, const char* end) {
  while (s < end) {
    size_t n = strcspn(s, ",:");
    if (n == 6 && strncmp(s, "memory", 6) == 0) return 1;
    s += n + 1;
  }
  return 0;
}

void ms_cgroup_parse_self(const char* text, char* v1, size_t v1len, char* v2,
                          size_t v2len) {
  v1[0] = v2[0] = '\0';
  while (*text) {
    size_t len = strcspn(text, "\n");
    const char* end = text + len;
    const char* ctl = memchr(text, ':', len);
    const char* path = ctl ? memchr(ctl + 1, ':', (size_t)(end - ctl - 1)) : NULL;
    /* Lines are "hierarchy-id:controllers:path"; v2 is "0::path". */
    if (path != NULL && path + 1 < end && path[1] == '/') {
      int n = (int)(end - path - 1);
      if (len >= 3 && strncmp(text, "0::", 3) == 0)
        snprintf(v2, v2len, "%.*s", n, path + 1);
      else if (has_memory(ctl + 1, path))
        snprintf(v1, v1len, "%.*s", n, path + 1);
    }
    text = *end ? end + 1 : end;
  }
}

static int parse_u64(const char* s, const char** end, uint64_t* out) {
  uint64_t v = 0;
  if (*s < '0' || *s > '9') return -EINVAL;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10) return -EINVAL;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  *end = s;
  *out = v;
  return 0;
}

int ms_cgroup_parse_value(const char* text, uint64_t* out) {
  const char* end;
  uint64_t v;
  if (strncmp(text, "max", 3) == 0 && (text[3] == '\0' || text[3] == '\n')) {
    *out = UINT64_MAX;
    return 0;
  }
  if (parse_u64(text, &end, &v) < 0) return -EINVAL;
  if (*end != '\0' && *end != '\n') return -EINVAL;
  *out = v;
  return 0;
}

int ms_cgroup_parse_key(const char* text, const char* key, uint64_t* out) {
  size_t klen = strlen(key);
  while (*text) {
    size_t len = strcspn(text, "\n");
    if (len > klen && strncmp(text, key, klen) == 0 && text[klen] == ' ') {
      const char* end;
      uint64_t v;
      if (parse_u64(text + klen + 1, &end, &v) < 0 || end != text + len)
        return -EINVAL;
      *out = v;
      return 0;
    }
    text += len;
    if (*text) text++;
  }
  return -ENOENT;
}

/* Opens <dir>/<file> read-only, or -1. */
static int open_in(const char* dir, const char* file) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/%s", dir, file);
  return open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}

static int exists(const char* dir, const char* file) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/%s", dir, file);
  return access(path, F_OK) == 0;
}

/* The group's directory under root+mount: the named group when it has
 * file, else the mount's top group when that has it. */
static int pick_dir(char* dir, size_t len, const char* root, const char* mount,
                    const char* group, const char* file) {
  snprintf(dir, len, "%s%s%s", root, mount, group);
  if (exists(dir, file)) return 0;
  snprintf(dir, len, "%s%s", root, mount);
  return exists(dir, file) ? 0 : -ENOENT;
}

int ms_cgroup_open(ms_cgroup_t* cg, const char* root,
                   const char* proc_self_cgroup) {
  char text[8192], v1[4096], v2[4096];
  ssize_t n;
  int fd;

  memset(cg, 0, sizeof(*cg));
  cg->fd_usage = cg->fd_limit = cg->fd_events = -1;
  fd = open(proc_self_cgroup, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -ENOENT;
  n = read(fd, text, sizeof(text) - 1);
  close(fd);
  if (n < 0) return -ENOENT;
  text[n] = '\0';
  ms_cgroup_parse_self(text, v1, sizeof(v1), v2, sizeof(v2));

  /* A hybrid host lists both; the memory controller lives where its file
   * exists, so v2 wins only when it has memory.max. */
  if (v2[0] && pick_dir(cg->dir, sizeof(cg->dir), root, "", v2,
                        "memory.max") == 0) {
    cg->version = 2;
    cg->fd_usage = open_in(cg->dir, "memory.current");
    cg->fd_limit = open_in(cg->dir, "memory.max");
    cg->fd_events = open_in(cg->dir, "memory.events");
    return 0;
  }
  if (v1[0] && pick_dir(cg->dir, sizeof(cg->dir), root, "/memory", v1,
                        "memory.limit_in_bytes") == 0) {
    cg->version = 1;
    cg->fd_usage = open_in(cg->dir, "memory.usage_in_bytes");
    cg->fd_limit = open_in(cg->dir, "memory.limit_in_bytes");
    cg->fd_events = open_in(cg->dir, "memory.oom_control");
    return 0;
  }
  cg->dir[0] = '\0';
  return -ENOENT;
}

/* The whole (small) file at fd, NUL-terminated; -1 when unreadable. */
static int pread_all(int fd, char* buf, size_t len) {
  ssize_t n;
  if (fd < 0) return -1;
  do
    n = pread(fd, buf, len - 1, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -1;
  buf[n] = '\0';
  return 0;
}

void ms_cgroup_read(const ms_cgroup_t* cg, ms_cgroup_read_t* out) {
  char buf[1024];
  uint64_t v;
  memset(out, 0, sizeof(*out));
  if (pread_all(cg->fd_usage, buf, sizeof(buf)) == 0 &&
      ms_cgroup_parse_value(buf, &v) == 0) {
    out->has_usage = 1;
    out->usage = v;
  }
  if (pread_all(cg->fd_limit, buf, sizeof(buf)) == 0 &&
      ms_cgroup_parse_value(buf, &v) == 0 && !ms_cgroup_unlimited(v)) {
    out->has_limit = 1;
    out->limit = v;
  }
  if (pread_all(cg->fd_events, buf, sizeof(buf)) == 0 &&
      ms_cgroup_parse_key(buf, "oom_kill", &v) == 0) {
    out->has_oom_kill = 1;
    out->oom_kill = v;
    if (ms_cgroup_parse_key(buf, "oom", &v) == 0) out->oom = v;
  }
}

void ms_cgroup_close(ms_cgroup_t* cg) {
  if (cg->fd_usage >= 0) close(cg->fd_usage);
  if (cg->fd_limit >= 0) close(cg->fd_limit);
  if (cg->fd_events >= 0) close(cg->fd_events);
  cg->fd_usage = cg->fd_limit = cg->fd_events = -1;
  cg->version = 0;
}
