/* restartlog.c: JSON lines appended to --log.  Owns the log fd only; what
 * goes into each event is decided by supervise.c. */
#include "restartlog.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ms_rlog_s {
  int fd;
  uint64_t size, max;
  char* path;
};

static int open_append(const char* path, uint64_t* size) {
  struct stat sb;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  *size = fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
  return fd;
}

int ms_rlog_open(const char* path, uint64_t max_bytes, ms_rlog_t** out) {
  *out = NULL;
  if (path == NULL) return 0;
  ms_rlog_t* log = calloc(1, sizeof(*log));
  if (log == NULL || (log->path = strdup(path)) == NULL) {
    free(log);
    return -ENOMEM;
  }
  log->max = max_bytes;
  log->fd = open_append(path, &log->size);
  if (log->fd < 0) {
    int err = log->fd;
    free(log->path);
    free(log);
    return err;
  }
  *out = log;
  return 0;
}

/* Keeps the file under its bound: rename is atomic, so a reader sees the
 * old file whole under path.1 and the new one under path. */
static int rotate(ms_rlog_t* log) {
  char old[4096];
  snprintf(old, sizeof(old), "%s.1", log->path);
  if (rename(log->path, old) < 0) return -errno;
  uint64_t size;
  int fd = open_append(log->path, &size);
  if (fd < 0) return fd;
  close(log->fd);
  log->fd = fd;
  log->size = size;
  return 0;
}

void ms_rlog_close(ms_rlog_t* log) {
  if (log == NULL) return;
  close(log->fd);
  free(log->path);
  free(log);
}

void ms_rfc3339_now(char buf[32]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

cJSON* ms_rlog_event(const char* event, pid_t pid, unsigned gen) {
  char ts[32];
  cJSON* obj = cJSON_CreateObject();
  if (obj == NULL) return NULL;
  ms_rfc3339_now(ts);
  cJSON_AddStringToObject(obj, "ts", ts);
  cJSON_AddStringToObject(obj, "event", event);
  cJSON_AddNumberToObject(obj, "pid", pid);
  cJSON_AddNumberToObject(obj, "gen", gen);
  return obj;
}

int ms_rlog_write(ms_rlog_t* log, cJSON* obj) {
  int err = 0;
  char* line = NULL;
  if (log == NULL || obj == NULL) goto end;
  line = cJSON_PrintUnformatted(obj);
  if (line == NULL) {
    err = -ENOMEM;
    goto end;
  }
  size_t len = strlen(line);
  line[len] = '\n'; /* replaces the NUL; the length is known */
  if (log->max && log->size > 0 && log->size + len + 1 > log->max) {
    err = rotate(log);
    if (err < 0) goto end;
  }
  ssize_t n;
  do
    n = write(log->fd, line, len + 1);
  while (n < 0 && errno == EINTR);
  if (n > 0) log->size += (uint64_t)n;
  if (n < 0)
    err = -errno;
  else if ((size_t)n != len + 1)
    err = -EIO; /* disk full mid-line: the reader skips the torn line */
end:
  if (line) cJSON_free(line);
  cJSON_Delete(obj);
  return err;
}

void ms_rlog_add_mem(cJSON* o, const ms_mem_t* m, int has_heap,
                     const ms_heap_t* st) {
  cJSON_AddNumberToObject(o, "footprint", (double)m->footprint);
  cJSON_AddNumberToObject(o, "rss", (double)m->rss);
  cJSON_AddNumberToObject(o, "swap", (double)m->swap);
  if (m->full)
    cJSON_AddNumberToObject(o, "lazyfree", (double)m->lazyfree);
  else
    cJSON_AddNullToObject(o, "lazyfree");
  cJSON_AddNumberToObject(o, "file", (double)m->rss_file);
  if (!has_heap || st == NULL) {
    cJSON_AddNullToObject(o, "heap");
    return;
  }
  cJSON_AddNumberToObject(o, "heap", (double)st->allocated);
  cJSON* h = cJSON_AddObjectToObject(o, "allocator");
  cJSON_AddNumberToObject(h, "allocated", (double)st->allocated);
  cJSON_AddNumberToObject(h, "active", (double)st->active);
  cJSON_AddNumberToObject(h, "resident", (double)st->resident);
  cJSON_AddNumberToObject(h, "retained", (double)st->retained);
  if (st->ngauges) {
    cJSON* g = cJSON_AddObjectToObject(o, "gauges");
    for (size_t i = 0; i < st->ngauges; i++)
      cJSON_AddNumberToObject(g, st->gauges[i].name, st->gauges[i].value);
  }
}

cJSON* ms_rlog_mem(const ms_mem_t* m, int has_heap, const ms_heap_t* st) {
  cJSON* o = cJSON_CreateObject();
  if (o) ms_rlog_add_mem(o, m, has_heap, st);
  return o;
}
