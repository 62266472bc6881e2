/* restartlog.c: JSON lines appended to --log.  Owns the log fd only; what
 * goes into each event is decided by supervise.c. */
#include "restartlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ms_rlog_s {
  int fd;
};

int ms_rlog_open(const char* path, ms_rlog_t** out) {
  *out = NULL;
  if (path == NULL) return 0;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  ms_rlog_t* log = malloc(sizeof(*log));
  if (log == NULL) {
    close(fd);
    return -ENOMEM;
  }
  log->fd = fd;
  *out = log;
  return 0;
}

void ms_rlog_close(ms_rlog_t* log) {
  if (log == NULL) return;
  close(log->fd);
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
  ssize_t n;
  do
    n = write(log->fd, line, len + 1);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    err = -errno;
  else if ((size_t)n != len + 1)
    err = -EIO; /* disk full mid-line: the reader skips the torn line */
end:
  if (line) cJSON_free(line);
  cJSON_Delete(obj);
  return err;
}
