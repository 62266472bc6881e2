/* handoff.c: the last good worker state.  Checks memfds that workers send,
 * makes sealed memfds, and keeps a copy in --state-dir (tmp file, fsync,
 * rename).  It does not talk to workers or decide when to save: the child
 * module does that and calls ms_state_store from a uv work thread.
 */
#include "handoff.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memsup_wire.h"

#define SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)
#define HDR_SIZE 32
#define CHUNK (1 << 20)
static const char magic[8] = "MSSTATE1";

void ms_state_init(ms_state_t* st) {
  memset(st, 0, sizeof(*st));
  st->fd = -1;
}

void ms_state_clear(ms_state_t* st) {
  int saved = errno;
  if (st->fd >= 0) close(st->fd);
  ms_state_init(st);
  errno = saved;
}

int ms_state_dup(const ms_state_t* src, ms_state_t* out) {
  /* F_DUPFD_CLOEXEC, never dup(): the copy is held while a store runs on
   * a work thread, and a worker spawned meanwhile would inherit a plain
   * dup of the memfd and pin the state's memory for its whole life. */
  int fd = fcntl(src->fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return -errno;
  *out = *src;
  out->fd = fd;
  return 0;
}

void ms_state_replace(ms_state_t* st, ms_state_t* src) {
  if (st == src) return;
  ms_state_clear(st);
  *st = *src;
  ms_state_init(src);
}

int ms_state_verify(int fd, uint64_t bytes, uint32_t crc, uint64_t max) {
  struct stat sb;
  void* p;
  int seals;
  uint32_t got;

  /* Before anything else: a worker could send a huge sparse memfd, and
   * reading it would make the kernel allocate every page. */
  if (bytes > max) return -EFBIG;
  if (fstat(fd, &sb) < 0) return -errno;
  if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != bytes) return -EBADMSG;
  seals = fcntl(fd, F_GET_SEALS);
  /* EINVAL: a file that cannot carry seals at all, so it is not sealed. */
  if (seals < 0) return errno == EINVAL ? -EPERM : -errno;
  if ((seals & SEALS) != SEALS) return -EPERM;
  if (bytes == 0) return crc == memsup_crc32c(0, "", 0) ? 0 : -EBADMSG;
  p = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return -errno;
  got = memsup_crc32c(0, p, bytes);
  munmap(p, bytes);
  return got == crc ? 0 : -EBADMSG;
}

static int write_all(int fd, const void* buf, uint64_t len) {
  const char* p = buf;
  ssize_t n;

  while (len > 0) {
    do
      n = write(fd, p, len);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    if (n == 0) return -EIO;
    p += n;
    len -= (uint64_t)n;
  }
  return 0;
}

/* Reads exactly len bytes at off; a file that ends early is a bad state. */
static int read_at(int fd, void* buf, size_t len, uint64_t off) {
  char* p = buf;
  ssize_t n;

  while (len > 0) {
    do
      n = pread(fd, p, len, (off_t)off);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    if (n == 0) return -EBADMSG;
    p += n;
    off += (uint64_t)n;
    len -= (size_t)n;
  }
  return 0;
}

/* Appends len bytes of in, from offset off, to out.  pread because a memfd
 * shares its file position with every worker that holds it. */
static int copy_bytes(int in, uint64_t off, int out, uint64_t len) {
  char* buf;
  size_t n;
  int err = 0;

  if (len == 0) return 0;
  buf = malloc(CHUNK);
  if (buf == NULL) return -ENOMEM;
  while (len > 0 && err == 0) {
    n = len < CHUNK ? (size_t)len : CHUNK;
    err = read_at(in, buf, n, off);
    if (err == 0) err = write_all(out, buf, n);
    off += n;
    len -= n;
  }
  free(buf);
  return err;
}

static int new_memfd(void) {
  int fd = memfd_create("memsup-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  return fd < 0 ? -errno : fd;
}

/* F_SEAL_SEAL too, so nobody can later drop the other seals. */
static int seal(int fd) {
  return fcntl(fd, F_ADD_SEALS, SEALS | F_SEAL_SEAL) < 0 ? -errno : 0;
}

int ms_state_memfd(const void* buf, uint64_t len) {
  int fd, err;

  fd = new_memfd();
  if (fd < 0) return fd;
  err = write_all(fd, buf, len);
  if (err == 0) err = seal(fd);
  if (err == 0) return fd;
  close(fd);
  errno = -err;
  return err;
}

int ms_state_dir_prepare(const char* dir) {
  struct stat sb;

  if (lstat(dir, &sb) < 0) {
    if (errno != ENOENT || mkdir(dir, 0700) < 0 || lstat(dir, &sb) < 0)
      return -errno;
  }
  if (S_ISLNK(sb.st_mode)) return -ELOOP;
  if (!S_ISDIR(sb.st_mode)) return -ENOTDIR;
  /* Not a promise (root passes, the disk may fill), but it turns a
   * read-only or foreign directory into one clear error at startup. */
  if (access(dir, W_OK | X_OK) < 0) return -errno;
  return 0;
}

unsigned ms_state_dir_loose(const char* dir) {
  struct stat sb;
  if (lstat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) return 0;
  return sb.st_mode & (S_IWGRP | S_IWOTH);
}

static int join(char* out, const char* dir, const char* name) {
  int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
  return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static void put_le(uint8_t* p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t* p, int n) {
  uint64_t v = 0;
  while (n-- > 0) v = v << 8 | p[n];
  return v;
}

/* dir/state: "MSSTATE1", bytes (u64), crc32c (u32), gen (u32), saved_ms
 * (u64), all little-endian, then the bytes. */
int ms_state_store(const char* dir, const ms_state_t* st) {
  char tmp[PATH_MAX], dst[PATH_MAX];
  uint8_t hdr[HDR_SIZE];
  int fd = -1, dfd = -1, err;

  if (st->fd < 0) return -EINVAL;
  if ((err = join(tmp, dir, "state.tmp")) || (err = join(dst, dir, "state")))
    return err;
  /* Opened first so that a bad dir fails before anything is written, and
   * nothing can fail between the rename and its fsync but the fsync. */
  dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -errno;
  /* A stale tmp from a crash may have another owner or mode, or be a
   * symlink someone planted: remove it, then create a new file with
   * O_EXCL, which fails (EEXIST) rather than open whatever appeared at
   * the name in between. */
  if (unlink(tmp) < 0 && errno != ENOENT) {
    err = -errno;
    goto fail;
  }
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    err = -errno;
    goto fail;
  }
  memcpy(hdr, magic, 8);
  put_le(hdr + 8, st->bytes, 8);
  put_le(hdr + 16, st->crc32c, 4);
  put_le(hdr + 20, st->gen, 4);
  put_le(hdr + 24, st->saved_ms, 8);
  err = write_all(fd, hdr, HDR_SIZE);
  if (err == 0) err = copy_bytes(st->fd, 0, fd, st->bytes);
  if (err == 0 && fsync(fd) < 0) err = -errno;
  /* close() reports delayed write errors on some filesystems (NFS). */
  if (close(fd) < 0 && err == 0) err = -errno;
  fd = -1;
  if (err == 0 && rename(tmp, dst) < 0) err = -errno;
  if (err) goto fail;
  if (fsync(dfd) < 0) err = -errno;
  close(dfd);
  return err;

fail:
  if (fd >= 0) close(fd);
  unlink(tmp);
  close(dfd);
  errno = -err;
  return err;
}

int ms_state_load(const char* dir, uint64_t max, ms_state_t* out) {
  char path[PATH_MAX];
  uint8_t hdr[HDR_SIZE];
  struct stat sb;
  uint64_t bytes;
  uint32_t crc;
  int fd = -1, mfd = -1, err;

  if ((err = join(path, dir, "state"))) return err;
  /* O_NONBLOCK so a FIFO planted there cannot hang us in open(). */
  fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return -errno;
  if (fstat(fd, &sb) < 0) {
    err = -errno;
    goto fail;
  }
  err = -EINVAL;
  if (!S_ISREG(sb.st_mode)) goto fail;
  err = -EBADMSG;
  if (sb.st_size < HDR_SIZE) goto fail;
  if ((err = read_at(fd, hdr, HDR_SIZE, 0))) goto fail;
  bytes = get_le(hdr + 8, 8);
  crc = (uint32_t)get_le(hdr + 16, 4);
  err = -EBADMSG;
  if (memcmp(hdr, magic, 8) || (uint64_t)sb.st_size - HDR_SIZE != bytes)
    goto fail;
  err = -EFBIG;
  if (bytes > max) goto fail;
  mfd = new_memfd();
  err = mfd < 0 ? mfd : copy_bytes(fd, HDR_SIZE, mfd, bytes);
  if (err == 0) err = seal(mfd);
  /* The same check a worker's memfd gets: size, seals and checksum. */
  if (err == 0) err = ms_state_verify(mfd, bytes, crc, max);
  if (err) goto fail;
  close(fd);
  ms_state_init(out);
  out->fd = mfd;
  out->bytes = bytes;
  out->crc32c = crc;
  strcpy(out->kind, "disk");
  out->gen = (unsigned)get_le(hdr + 20, 4);
  out->saved_ms = get_le(hdr + 24, 8);
  return 0;

fail:
  close(fd);
  if (mfd >= 0) close(mfd);
  errno = -err;
  return err;
}
