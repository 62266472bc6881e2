/* prof.c: the names of heap profiles (prof.h). */
#include "prof.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "memsup_wire.h"

int ms_prof_path(char* buf, size_t cap, const char* log, pid_t pid,
                 unsigned gen, int end) {
  char cwd[PATH_MAX] = "";
  if (log == NULL || log[0] == '\0') return -ENOENT;
  /* The worker may run elsewhere (--chdir, its own chdir): the path it
   * gets is absolute. */
  if (log[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL) return -errno;
  if (cap > MEMSUP_PROF_PATH_MAX) cap = MEMSUP_PROF_PATH_MAX;
  int n = snprintf(buf, cap, "%s%s%s.%u.%d.%s.heap", cwd, cwd[0] ? "/" : "",
                   log, gen, (int)pid, end ? "end" : "start");
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}
