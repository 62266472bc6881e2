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

#include "logkeys.h"

struct ms_rlog_s {
  int fd;
  uint64_t size, max;
  int torn; /* the file ends in part of a line (a write that fell short) */
  char* path;
};

/* O_NOFOLLOW: a symlink planted at the log path (in a shared directory)
 * would make memsup append to its target, with memsup's privileges; it is
 * refused with ELOOP.  0640: the log names commands and mappings, which
 * other users need not read; the umask still applies. */
static int open_append(const char* path, uint64_t* size) {
  struct stat sb;
  /* "-": memsup's stdout, for container log collectors.  A copy, so that
   * closing the log leaves stdout alone. */
  if (strcmp(path, "-") == 0) {
    int fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    *size = 0;
    return fd < 0 ? -errno : fd;
  }
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                0640);
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
  /* stdout cannot be rotated. */
  log->max = strcmp(path, "-") == 0 ? 0 : max_bytes;
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
  log->torn = 0;
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
  cJSON_AddStringToObject(obj, MS_K_TS, ts);
  cJSON_AddStringToObject(obj, MS_K_EVENT, event);
  cJSON_AddNumberToObject(obj, MS_K_PID, pid);
  cJSON_AddNumberToObject(obj, MS_K_GEN, gen);
  return obj;
}

/* Writes all of buf, retrying after a short write: a disk that fills
 * mid-line makes write(2) return what fitted, and only the retry returns
 * the reason (ENOSPC, EDQUOT, EFBIG).  Returns 0 or -errno; *done is how
 * many bytes landed. */
static int write_all(int fd, const char* buf, size_t len, size_t* done) {
  ssize_t n;
  *done = 0;
  while (*done < len) {
    do
      n = write(fd, buf + *done, len - *done);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    if (n == 0) return -EIO; /* not seen on Linux files; never loop on it */
    *done += (size_t)n;
  }
  return 0;
}

int ms_rlog_write(ms_rlog_t* log, cJSON* obj) {
  int err = 0;
  char* text = NULL;
  char* line;
  size_t len, done;
  if (log == NULL || obj == NULL) goto end;
  text = cJSON_PrintUnformatted(obj);
  if (text == NULL) {
    err = -ENOMEM;
    goto end;
  }
  len = strlen(text);
  /* After a torn write the file ends mid-line: this event starts with a
   * newline so that it lands as a whole line of its own, and only the torn
   * one is lost (readers skip and count it).  One buffer, one write(2) in
   * the normal case, so lines of concurrent writers do not interleave. */
  line = malloc(len + 2);
  if (line == NULL) {
    err = -ENOMEM;
    goto end;
  }
  line[0] = '\n';
  memcpy(line + 1, text, len);
  line[len + 1] = '\n';
  if (log->max && log->size > 0 && log->size + len + 1 > log->max) {
    err = rotate(log);
    if (err < 0) {
      free(line);
      goto end;
    }
  }
  const char* p = log->torn ? line : line + 1;
  size_t total = log->torn ? len + 2 : len + 1;
  err = write_all(log->fd, p, total, &done);
  log->size += done;
  /* A write that landed nothing leaves the file as it was. */
  if (done > 0) log->torn = done < total;
  free(line);
end:
  if (text) cJSON_free(text);
  cJSON_Delete(obj);
  return err;
}

void ms_rlog_add_mem(cJSON* o, const ms_mem_t* m, int has_heap,
                     const ms_heap_t* st) {
  cJSON_AddNumberToObject(o, MS_K_FOOTPRINT, (double)m->footprint);
  cJSON_AddNumberToObject(o, MS_K_RSS, (double)m->rss);
  cJSON_AddNumberToObject(o, MS_K_SWAP, (double)m->swap);
  if (m->full)
    cJSON_AddNumberToObject(o, MS_K_LAZYFREE, (double)m->lazyfree);
  else
    cJSON_AddNullToObject(o, MS_K_LAZYFREE);
  cJSON_AddNumberToObject(o, MS_K_FILE, (double)m->rss_file);
  /* Beside footprint so the file pages it leaves out stay visible. */
  if (m->full)
    cJSON_AddNumberToObject(o, MS_K_PRIVATE_DIRTY, (double)m->private_dirty);
  else
    cJSON_AddNullToObject(o, MS_K_PRIVATE_DIRTY);
  cJSON_AddNumberToObject(o, MS_K_SHMEM, (double)m->rss_shmem);
  if (!has_heap || st == NULL) {
    cJSON_AddNullToObject(o, MS_K_HEAP);
    return;
  }
  cJSON_AddNumberToObject(o, MS_K_HEAP, (double)st->allocated);
  cJSON* h = cJSON_AddObjectToObject(o, MS_K_ALLOCATOR);
  cJSON_AddNumberToObject(h, MS_K_ALLOCATED, (double)st->allocated);
  cJSON_AddNumberToObject(h, MS_K_ACTIVE, (double)st->active);
  cJSON_AddNumberToObject(h, MS_K_RESIDENT, (double)st->resident);
  cJSON_AddNumberToObject(h, MS_K_RETAINED, (double)st->retained);
  if (st->ngauges) {
    cJSON* g = cJSON_AddObjectToObject(o, MS_K_GAUGES);
    for (size_t i = 0; i < st->ngauges; i++)
      cJSON_AddNumberToObject(g, st->gauges[i].name, st->gauges[i].value);
  }
}

cJSON* ms_rlog_mem(const ms_mem_t* m, int has_heap, const ms_heap_t* st) {
  cJSON* o = cJSON_CreateObject();
  if (o) ms_rlog_add_mem(o, m, has_heap, st);
  return o;
}
