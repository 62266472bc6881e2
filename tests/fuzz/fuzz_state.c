/* fuzz_state.c: libFuzzer target for the state checks: ms_state_verify on
 * a memfd made from the input (sealed or not, with the right checksum or
 * a wrong one, a matching size or not, by the first byte), and
 * ms_state_load on a state directory whose "state" file is the input.
 * Whatever a worker sends or a disk holds, the checks must return an
 * error or a state that verifies.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ftw.h>

#include "handoff.h"
#include "memsup_wire.h"

#define MAX (1u << 20)

static char dir[64];

static void verify(const uint8_t* data, size_t size) {
  uint8_t mode = size ? data[0] : 0;
  uint64_t bytes = size;
  uint32_t crc = memsup_crc32c(0, data, size);
  int fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) abort();
  if (size && write(fd, data, size) != (ssize_t)size) abort();
  if (mode & 1)
    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
  else if (mode & 2)
    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE);
  if (mode & 4) crc ^= 1u << (mode >> 5);
  if (mode & 8) bytes += (mode >> 4) - 8;
  int r = ms_state_verify(fd, bytes, crc, mode & 16 ? size / 2 : MAX);
  /* Accepted only when everything matches. */
  if (r == 0 && (!(mode & 1) || bytes != size ||
                 crc != memsup_crc32c(0, data, size)))
    __builtin_trap();
  if (r > 0) __builtin_trap();
  close(fd);
}

static void load(const uint8_t* data, size_t size) {
  char path[128];
  ms_state_t st;
  snprintf(path, sizeof(path), "%s/state", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) abort();
  if (size && write(fd, data, size) != (ssize_t)size) abort();
  close(fd);
  int r = ms_state_load(dir, MAX, &st);
  if (r > 0) __builtin_trap();
  if (r == 0) {
    /* What loads is a sealed memfd of exactly the payload. */
    if (st.fd < 0 || st.bytes + 32 != size || strcmp(st.kind, "disk") != 0)
      __builtin_trap();
    if (ms_state_verify(st.fd, st.bytes, st.crc32c, MAX) != 0)
      __builtin_trap();
    if (st.bytes && memsup_crc32c(0, data + 32, st.bytes) != st.crc32c)
      __builtin_trap();
    ms_state_clear(&st);
  }
}

static int rm_cb(const char* p, const struct stat* sb, int type,
                 struct FTW* ftw) {
  (void)sb, (void)ftw;
  return type == FTW_DP ? rmdir(p) : unlink(p);
}

static void cleanup(void) { nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS); }

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (dir[0] == '\0') {
    /* tmpfs when there is one: this runs thousands of times a second. */
    snprintf(dir, sizeof(dir), "/dev/shm/memsup-fuzz-state-XXXXXX");
    if (mkdtemp(dir) == NULL) {
      snprintf(dir, sizeof(dir), "/tmp/memsup-fuzz-state-XXXXXX");
      if (mkdtemp(dir) == NULL) abort();
    }
    atexit(cleanup);
  }
  verify(data, size);
  load(data, size);
  return 0;
}
