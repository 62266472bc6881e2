/* fuzz_wire.c: libFuzzer target for everything memsup reads from a worker
 * and for the wire paths both ends share.  Each input is (1) decoded as
 * one message payload in both directions, (2) fed as a raw byte stream
 * through the channel's reassembly in chunks of pseudo-random size, (3)
 * wrapped in a valid frame header and fed the same way, so JSON inputs
 * reach the delivery path too, (4) run through the shared reader on its
 * own with its invariants checked, (5) written into a real socketpair in
 * chunks, some with a memfd attached, and read by the channel's own
 * recvmsg path (no descriptor may leak or reach a message other than a
 * state), and (6) when it is JSON, sent with ms_channel_send (with a memfd)
 * and read back whole with the reader.  Chunk sizes come from a hash of
 * the input, so every crash reproduces.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"
#include "memsup_wire.h"

static uv_loop_t loop;
static uint64_t rng;

static size_t next_chunk(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  /* Mostly small chunks (split headers), sometimes large ones. */
  return (rng & 3) ? 1 + (rng >> 8) % 16 : 1 + (rng >> 8) % 70000;
}

static int eof_seen;

static void on_message(ms_channel_t* ch, const ms_msg_t* m, int fd,
                       void* arg) {
  (void)ch;
  (void)arg;
  if (fd >= 0 && m->type != MS_MSG_STATE) __builtin_trap();
  if (fd >= 0) close(fd);
  /* Invariants every consumer relies on. */
  if (m->ngauges > MS_GAUGES_MAX || m->type > MS_MSG_READY ||
      memchr(m->t, 0, sizeof(m->t)) == NULL ||
      memchr(m->text, 0, sizeof(m->text)) == NULL ||
      memchr(m->kind, 0, sizeof(m->kind)) == NULL ||
      memchr(m->allocator, 0, sizeof(m->allocator)) == NULL)
    __builtin_trap();
  for (size_t i = 0; i < m->ngauges; i++)
    if (memchr(m->gauges[i].name, 0, MS_GAUGE_NAME_MAX) == NULL)
      __builtin_trap();
}

static void on_eof(ms_channel_t* ch, void* arg) {
  (void)ch;
  (void)arg;
  eof_seen++;
}

static int open_fds(void) {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == NULL) abort();
  while (readdir(d) != NULL) n++;
  closedir(d);
  return n;
}

static int small_memfd(void) {
  int fd = memfd_create("fuzz", MFD_CLOEXEC);
  if (fd < 0 || write(fd, "x", 1) != 1) abort();
  return fd;
}

static const ms_channel_cb_t cb = {on_message, on_eof};

static void feed(const uint8_t* data, size_t size) {
  ms_channel_t* ch;
  int parent, child;
  if (ms_channel_pair(&parent, &child) < 0) abort();
  close(child);
  if (ms_channel_open(&loop, parent, &cb, NULL, &ch) < 0) abort();
  while (size > 0) {
    size_t n = next_chunk();
    if (n > size) n = size;
    size_t k = ms_channel_feed(ch, data, n);
    if (k == 0) break; /* reading stopped (wrong version) */
    data += k;
    size -= k;
  }
  ms_channel_close(ch, NULL, NULL);
  uv_run(&loop, UV_RUN_NOWAIT); /* runs the close callbacks: frees ch */
}

/* (4) The shared reader alone: every event consistent with the bytes. */
static void read_alone(const uint8_t* data, size_t size) {
  memsup_reader_t r;
  memsup_frame_t f;
  int stopped = 0;
  if (memsup_reader_init(&r) < 0) abort();
  while (size > 0) {
    size_t n = next_chunk();
    if (n > size) n = size;
    size_t k = memsup_reader_put(&r, data, n);
    if (k == 0) {
      if (!stopped) __builtin_trap(); /* full, yet next() said MORE */
      break;
    }
    data += k;
    size -= k;
    for (;;) {
      memsup_read_t ev = memsup_reader_next(&r, &f);
      if (ev == MEMSUP_READ_MORE) break;
      if (stopped && ev != MEMSUP_READ_STOPPED) __builtin_trap();
      if (ev == MEMSUP_READ_STOPPED || ev == MEMSUP_READ_BAD_VERSION) {
        if (ev == MEMSUP_READ_BAD_VERSION && f.version == MEMSUP_WIRE_VERSION)
          __builtin_trap();
        stopped = 1;
        break;
      }
      if (ev == MEMSUP_READ_FRAME &&
          (f.len > MEMSUP_FRAME_MAX || f.payload < r.buf + MEMSUP_FRAME_HDR ||
           f.payload + f.len > r.buf + r.len ||
           memcmp(f.payload - MEMSUP_FRAME_HDR, "ms\x01J", 4) != 0))
        __builtin_trap();
      if (ev == MEMSUP_READ_TOO_BIG && f.len <= MEMSUP_FRAME_MAX)
        __builtin_trap();
    }
    if (stopped) break;
  }
  memsup_reader_free(&r);
}

/* (5) Through a real socket: sendmsg with memfds on some chunks, the
 * channel's recvmsg and descriptor queue on the other side. */
static void through_socket(const uint8_t* data, size_t size) {
  ms_channel_t* ch;
  int parent, child, stuck = 0, before = open_fds();
  if (ms_channel_pair(&parent, &child) < 0) abort();
  fcntl(child, F_SETFL, O_NONBLOCK);
  if (ms_channel_open(&loop, parent, &cb, NULL, &ch) < 0) abort();
  eof_seen = 0;
  while (size > 0) {
    size_t n = next_chunk();
    if (n > size) n = size;
    int mfd = (rng & 0x30) == 0 ? small_memfd() : -1;
    ssize_t k = memsup_wire_send(child, data, n, mfd, MSG_DONTWAIT);
    if (mfd >= 0) close(mfd);
    if (k == -EAGAIN) {
      /* Full: let the channel read, unless it has stopped or paused. */
      uv_run(&loop, UV_RUN_NOWAIT);
      if (eof_seen || ++stuck > 64) break;
      continue;
    }
    stuck = 0;
    if (k <= 0) break;
    data += k;
    size -= (size_t)k;
  }
  close(child);
  /* Until the end of file is seen; a paused (flooded) channel is left. */
  for (int i = 0; i < 16 && !eof_seen; i++) uv_run(&loop, UV_RUN_NOWAIT);
  ms_channel_close(ch, NULL, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  if (open_fds() != before) __builtin_trap(); /* a descriptor leaked */
}

/* (6) ms_channel_send of the input as JSON, read back with the reader. */
static void send_back(const uint8_t* data, size_t size) {
  ms_channel_t* ch;
  memsup_reader_t r;
  memsup_frame_t f;
  int parent, child, got = 0, fd;
  cJSON* j = cJSON_ParseWithLength((const char*)data, size);
  if (j == NULL) return;
  char* text = cJSON_PrintUnformatted(j);
  if (text == NULL) abort();
  size_t len = strlen(text);
  if (ms_channel_pair(&parent, &child) < 0) abort();
  if (ms_channel_open(&loop, parent, &cb, NULL, &ch) < 0) abort();
  int mfd = small_memfd();
  int err = ms_channel_send(ch, j, mfd);
  close(mfd);
  if (len > MEMSUP_FRAME_MAX ? err != -EMSGSIZE : err != 0) __builtin_trap();
  if (memsup_reader_init(&r) < 0) abort();
  while (err == 0 && !got) {
    uv_run(&loop, UV_RUN_NOWAIT); /* flushes what did not fit at once */
    if (memsup_reader_recv(&r, child, 0, MSG_DONTWAIT) < 0) continue;
    memsup_read_t ev = memsup_reader_next(&r, &f);
    if (ev == MEMSUP_READ_MORE) continue;
    if (ev != MEMSUP_READ_FRAME || f.len != len ||
        memcmp(f.payload, text, len) != 0)
      __builtin_trap();
    got = 1;
  }
  fd = memsup_reader_take_fd(&r);
  if ((err == 0) != (fd >= 0)) __builtin_trap(); /* the memfd came with it */
  if (fd >= 0) close(fd);
  memsup_reader_free(&r);
  close(child);
  ms_channel_close(ch, NULL, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  cJSON_free(text);
  cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int ready;
  static uint8_t framed[MEMSUP_FRAME_HDR + MEMSUP_FRAME_MAX];
  ms_msg_t msg;
  if (!ready) {
    uv_loop_init(&loop);
    ms_log_set_verbosity(-1);
    ready = 1;
  }
  rng = 0x9E3779B97F4A7C15ull ^ size;
  for (size_t i = 0; i < size; i++) rng = (rng ^ data[i]) * 0x100000001B3ull;
  if (rng == 0) rng = 1;

  ms_msg_decode((const char*)data, size, &msg);
  memsup_msg_decode((const char*)data, size, MEMSUP_FROM_MEMSUP, &msg);
  feed(data, size);
  if (memsup_wire_header(framed, size) == 0) {
    if (size > 0) memcpy(framed + MEMSUP_FRAME_HDR, data, size);
    feed(framed, MEMSUP_FRAME_HDR + size);
  }
  read_alone(data, size);
  through_socket(data, size);
  if (memsup_wire_header(framed, size) == 0)
    through_socket(framed, MEMSUP_FRAME_HDR + size);
  send_back(data, size);
  return 0;
}
