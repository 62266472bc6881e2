/* prof.c: the allocation sites that grew over a worker's life, from the
 * two jemalloc heap profiles memsup asked of it (docs/profiling.md): the
 * restart line's prof.start and prof.end.  Symbolizing needs the worker's
 * binary and its symbols, which jemalloc's heap_v2 files do not carry, so
 * this runs `jeprof --text --show_bytes --base=START BINARY END` (perl,
 * Debian's libjemalloc-dev) and reads its table: the same answer a person
 * gets from jeprof.  The binary is the first file in the profile's
 * MAPPED_LIBRARIES section (the worker's /proc/PID/maps at the dump, which
 * lists the executable first).  Only the last restart with both files is
 * read: jeprof takes about a second.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h> /* isfinite() only */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

extern char** environ;

/* The executable named in path's MAPPED_LIBRARIES section into exe.
 * 0, or -errno / -ENOENT when the file or the section is not there. */
static int prof_binary(const char* path, char* exe, size_t cap) {
  char line[4096];
  int in = 0, err = -ENOENT;
  FILE* f = fopen(path, "re");
  if (f == NULL) return -errno;
  while (fgets(line, sizeof(line), f)) {
    if (!in) {
      in = strncmp(line, "MAPPED_LIBRARIES:", 17) == 0;
      continue;
    }
    char* slash = strchr(line, '/');
    if (slash == NULL) continue;
    slash[strcspn(slash, "\n")] = '\0';
    if (strlen(slash) < cap) {
      strcpy(exe, slash);
      err = 0;
    }
    break;
  }
  fclose(f);
  return err;
}

/* Runs jeprof; its stdout into *out (malloc'd).  Returns its exit status,
 * 127 when it could not be run, or -ENOMEM. */
static int run_jeprof(const char* base, const char* exe, const char* end,
                      char** out) {
  char basearg[4200];
  int pipefd[2], status = 127;
  pid_t pid;
  posix_spawn_file_actions_t fa;
  snprintf(basearg, sizeof(basearg), "--base=%s", base);
  char* argv[] = {"jeprof", "--text", "--show_bytes", basearg,
                  (char*)exe,  (char*)end, NULL};
  *out = NULL;
  if (pipe2(pipefd, O_CLOEXEC) < 0) return 127;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  int err = posix_spawnp(&pid, "jeprof", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  size_t len = 0;
  FILE* m = open_memstream(out, &len);
  if (m) {
    char buf[4096];
    ssize_t n;
    while ((n = read(pipefd[0], buf, sizeof(buf))) > 0)
      fwrite(buf, 1, (size_t)n, m);
    fclose(m);
  }
  close(pipefd[0]);
  if (err != 0) return 127;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (m == NULL || *out == NULL) return -ENOMEM;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* jeprof's rows ("  36395009 100.0% 100.0% 36395009 100.0% leak_here")
 * with flat bytes > 0, at most top, as {name, bytes}. */
static void parse_rows(cJSON* sites, const char* text, size_t top) {
  const char* p = text;
  size_t n = 0;
  while (p && *p && n < top) {
    const char* nl = strchr(p, '\n');
    double flat, f1, f2, cum, f3;
    int used = 0;
    char name[512];
    if (sscanf(p, " %lf %lf%% %lf%% %lf %lf%% %n", &flat, &f1, &f2, &cum, &f3,
               &used) == 5 &&
        used > 0 && flat > 0) {
      size_t len = (nl ? (size_t)(nl - p) : strlen(p)) - (size_t)used;
      snprintf(name, sizeof(name), "%.*s", (int)len, p + used);
      cJSON* o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "name", name);
      cJSON_AddNumberToObject(o, "bytes", flat);
      cJSON_AddItemToArray(sites, o);
      n++;
    }
    p = nl ? nl + 1 : NULL;
  }
}

int ms_report_prof(const data_t* d, cJSON* summary, size_t top) {
  const restart_t* r = d->rs.v;
  const restart_t* last = NULL;
  char exe[4096], *text = NULL;
  for (size_t i = d->rs.n; i-- > 0 && last == NULL;)
    if (r[i].prof_start && r[i].prof_end &&
        access(r[i].prof_start, R_OK) == 0 && access(r[i].prof_end, R_OK) == 0)
      last = &r[i];
  if (last == NULL) {
    /* Nothing to say unless some restart named profiles. */
    for (size_t i = 0; i < d->rs.n; i++)
      if (r[i].prof_end) {
        cJSON* o = cJSON_AddObjectToObject(summary, "allocation_sites");
        cJSON_AddStringToObject(
            o, "error",
            "the restart log names heap profiles, but no restart has both "
            "its start and end profile readable here");
        return 0;
      }
    return 0;
  }
  cJSON* o = cJSON_AddObjectToObject(summary, "allocation_sites");
  if (o == NULL) return -ENOMEM;
  cJSON_AddNumberToObject(o, "old_pid", last->old_pid);
  cJSON_AddStringToObject(o, "start", last->prof_start);
  cJSON_AddStringToObject(o, "end", last->prof_end);
  if (prof_binary(last->prof_end, exe, sizeof(exe)) < 0) {
    cJSON_AddStringToObject(o, "error",
                            "no MAPPED_LIBRARIES section in the end profile");
    return 0;
  }
  cJSON_AddStringToObject(o, "binary", exe);
  int rc = run_jeprof(last->prof_start, exe, last->prof_end, &text);
  if (rc == -ENOMEM) return -ENOMEM;
  if (rc != 0) {
    cJSON_AddStringToObject(
        o, "error",
        rc == 127 ? "jeprof is not installed (Debian: libjemalloc-dev)"
                  : "jeprof failed (is the binary still there, with symbols?)");
    free(text);
    return 0;
  }
  cJSON* sites = cJSON_AddArrayToObject(o, "sites");
  if (sites) parse_rows(sites, text, top);
  free(text);
  return 0;
}
