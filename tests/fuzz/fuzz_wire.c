/* fuzz_wire.c: libFuzzer target for everything memsup reads from a worker.
 * Each input is (1) decoded as one message payload, (2) fed as a raw byte
 * stream through the channel's reassembly in chunks of pseudo-random size,
 * and (3) wrapped in a valid frame header and fed the same way, so JSON
 * inputs reach the delivery path too.  Chunk sizes come from a hash of the
 * input, so every crash reproduces.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

static void on_message(ms_channel_t* ch, const ms_msg_t* m, int fd,
                       void* arg) {
  (void)ch;
  (void)arg;
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
  feed(data, size);
  if (memsup_wire_header(framed, size) == 0) {
    if (size > 0) memcpy(framed + MEMSUP_FRAME_HDR, data, size);
    feed(framed, MEMSUP_FRAME_HDR + size);
  }
  return 0;
}
