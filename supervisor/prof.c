/* prof.c: the names of heap profiles (prof.h). */
#include "prof.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
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

int ms_prof_remove_gen(const char* log, unsigned gen) {
  char pat[PATH_MAX + 64];
  glob_t g;
  int n = 0;
  if (log == NULL || log[0] == '\0') return -ENOENT;
  /* The log's own name may hold glob characters: escape them. */
  size_t k = 0;
  for (const char* c = log; *c && k + 2 < PATH_MAX; c++) {
    if (strchr("*?[\\", *c)) pat[k++] = '\\';
    pat[k++] = *c;
  }
  snprintf(pat + k, sizeof(pat) - k, ".%u.*.heap", gen);
  if (glob(pat, GLOB_NOSORT, NULL, &g) != 0) return 0;
  for (size_t i = 0; i < g.gl_pathc; i++) n += unlink(g.gl_pathv[i]) == 0;
  globfree(&g);
  return n;
}
