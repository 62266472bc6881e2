/* handoff.h: the last good worker state, kept by memsup between workers.
 *
 * A state is a sealed memfd (no writes, no resizes: see memfd_create(2)),
 * so memsup and the next worker can share it without copying and nobody
 * can change it after it was checked.  With --state-dir the same bytes are
 * also kept on disk (tmp file, fsync, rename; mode 0600; symlinks refused)
 * so that a memsup restarted after its own crash can hand them back.
 */
#ifndef MS_HANDOFF_H
#define MS_HANDOFF_H

#include <stdint.h>

typedef struct {
  int fd;           /* sealed memfd, -1 when there is no state */
  uint64_t bytes;
  uint32_t crc32c;
  char kind[16];    /* "save", "checkpoint" or "disk" */
  unsigned gen;     /* worker generation that produced it */
  uint64_t saved_ms;/* wall-clock ms when it was received */
} ms_state_t;

void ms_state_init(ms_state_t* st);
/* Closes the memfd and empties st. */
void ms_state_clear(ms_state_t* st);
/* Makes src (ownership of src->fd passes) the current state; the old one
 * is closed. */
void ms_state_replace(ms_state_t* st, ms_state_t* src);

/* Makes out a copy of src with its own close-on-exec descriptor of the
 * same memfd (the caller closes it, e.g. with ms_state_clear).  Use it,
 * not dup(), for any copy: workers must not inherit state descriptors.
 * Returns 0 or -errno (out untouched on failure). */
int ms_state_dup(const ms_state_t* src, ms_state_t* out);

/* Checks a memfd received from a worker before it is trusted: size is
 * bytes (and <= max), it carries F_SEAL_WRITE|F_SEAL_SHRINK|F_SEAL_GROW,
 * and its CRC-32C is crc.  Returns 0, -EFBIG when bytes > max, -EPERM when
 * not sealed, -EBADMSG on a size or checksum mismatch, or another -errno. */
int ms_state_verify(int fd, uint64_t bytes, uint32_t crc, uint64_t max);

/* Creates dir (0700) if missing.  Refuses a symlink (-ELOOP) and a
 * non-directory (-ENOTDIR); checks it is writable.  Returns 0 or -errno. */
int ms_state_dir_prepare(const char* dir);
/* The group and world write bits (S_IWGRP | S_IWOTH) of dir's mode: 0
 * when only its owner may create files there (or it is not a directory).
 * Anyone who can write to dir can replace the state a new worker loads,
 * so main.c warns about a non-zero result. */
unsigned ms_state_dir_loose(const char* dir);
/* Writes st to dir/state through dir/state.tmp (a stale one is removed
 * first, the new one created with O_EXCL): header, bytes, fsync, rename,
 * fsync of dir.  Blocking: call it from a uv work thread.  Returns
 * 0 or -errno; on failure the previous dir/state is left intact. */
int ms_state_store(const char* dir, const ms_state_t* st);
/* Loads dir/state into a new sealed memfd in out (kind "disk").  Returns
 * 0, -ENOENT when there is none, -EFBIG over max, -EBADMSG when the header
 * or checksum is wrong, -ELOOP for a symlink, or another -errno. */
int ms_state_load(const char* dir, uint64_t max, ms_state_t* out);

/* Copies len bytes from buf into a new sealed memfd.  Returns the fd or
 * -errno.  Used by tests and by the disk loader. */
int ms_state_memfd(const void* buf, uint64_t len);

#endif
