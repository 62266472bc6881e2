/* fuzz_cgroup.c: libFuzzer target for the cgroup lookup behind
 * "--limit N%" (ms_cgroup_limit in config.c).  The input is
 * "PROC_SELF_CGROUP\0LIMIT_FILE": the first part becomes the
 * /proc/self/cgroup text, the second the content of every memory.max and
 * memory.limit_in_bytes in a small fake tree (at the root and in group
 * "grp", v2 and v1 layouts) under a private temp directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ftw.h>

#include "config.h"

static char root[64];

static void put(const char* name, const void* p, size_t n) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", root, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) abort();
  if (n > 0 && write(fd, p, n) != (ssize_t)n) abort();
  close(fd);
}

static void dir(const char* name) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", root, name);
  if (mkdir(path, 0700) < 0 && errno != EEXIST) abort();
}

static int rm_cb(const char* p, const struct stat* sb, int type,
                 struct FTW* ftw) {
  (void)sb, (void)ftw;
  return type == FTW_DP ? rmdir(p) : unlink(p);
}

static void cleanup(void) { nftw(root, rm_cb, 8, FTW_DEPTH | FTW_PHYS); }

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t *sep, *lim;
  size_t n1, n2;
  uint64_t v = 0;
  char psc[128];
  int r;

  if (root[0] == '\0') {
    /* tmpfs when there is one: this runs thousands of times a second. */
    snprintf(root, sizeof(root), "/dev/shm/memsup-fuzz-cgroup-XXXXXX");
    if (mkdtemp(root) == NULL) {
      snprintf(root, sizeof(root), "/tmp/memsup-fuzz-cgroup-XXXXXX");
      if (mkdtemp(root) == NULL) abort();
    }
    atexit(cleanup);
    dir("grp");
    dir("memory");
    dir("memory/grp");
  }
  sep = memchr(data, '\0', size);
  n1 = sep ? (size_t)(sep - data) : size;
  n2 = sep ? size - n1 - 1 : 0;
  lim = sep ? sep + 1 : data;
  put("proc_self_cgroup", data, n1);
  put("memory.max", lim, n2);
  put("grp/memory.max", lim, n2);
  put("memory/memory.limit_in_bytes", lim, n2);
  put("memory/grp/memory.limit_in_bytes", lim, n2);
  snprintf(psc, sizeof(psc), "%s/proc_self_cgroup", root);

  r = ms_cgroup_limit(root, psc, &v);
  /* A limit is a number below the "unlimited" sentinel; anything else is
   * -ENOENT (none) or another -errno. */
  if (r == 0 && v >= (1ULL << 62)) __builtin_trap();
  if (r > 0) __builtin_trap();
  return 0;
}
