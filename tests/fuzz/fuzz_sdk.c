/* fuzz_sdk.c: libFuzzer target for the SDK's side of the channel: what a
 * worker does with the bytes memsup sends (welcome, save, purge, garbage,
 * anything).  The SDK's file is included so that its static reader and
 * handlers run exactly as memsup_init() and memsup_process() run them, on
 * a real socketpair, with the global state reset between inputs.
 *
 * Input: byte 0 picks options (bit 0: a memfd, made of the next 16 bytes,
 * arrives as if attached to the welcome); the rest is the stream from
 * memsup, fed in chunks of pseudo-random size.  Every frame the SDK sends
 * back is read with the shared reader and must pass memsup's own strict
 * decoder: the oracle is that the SDK never writes what memsup rejects.
 */
/* A 1 MiB gather buffer per save costs milliseconds under ASan. */
#define STATE_BUF 4096
#include "child-sdk/memsup.c"

static uint64_t rng;
static memsup_reader_t peer; /* memsup's end */

static size_t next_chunk(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (rng & 3) ? 1 + (rng >> 8) % 16 : 1 + (rng >> 8) % 70000;
}

static int save_cb(memsup_state_t* st, void* arg) {
  (void)arg;
  return memsup_state_write(st, "fuzzed state", 12);
}

/* Reads and checks what the SDK has sent so far; closes passed memfds. */
static void drain_peer(int fd) {
  memsup_frame_t f;
  memsup_msg_t m;
  while (memsup_reader_recv(&peer, fd, 0, MSG_DONTWAIT) > 0) {
    memsup_read_t ev;
    while ((ev = memsup_reader_next(&peer, &f)) != MEMSUP_READ_MORE) {
      if (ev != MEMSUP_READ_FRAME) __builtin_trap();
      if (memsup_msg_decode((const char*)f.payload, f.len, MEMSUP_FROM_WORKER,
                            &m) != 0 ||
          m.type == MEMSUP_T_UNKNOWN)
        __builtin_trap();
    }
    for (int k; (k = memsup_reader_take_fd(&peer)) >= 0;) close(k);
  }
}

/* As after memsup_init() found $MEMSUP_FD: connected, nothing received. */
static void reset(int fd) {
  g.fd = fd;
  g.gone = 0;
  g.interval_ms = DEFAULT_INTERVAL_MS;
  g.has_state = g.restore_called = g.restore_err = 0;
  g.state_fd = -1;
  g.state_bytes = g.restored_unix_us = 0;
  g.map = NULL;
  g.save_fn = save_cb;
  if (memsup_reader_init(&g.rd) < 0) abort();
}

/* Runs the messages buffered so far: the first welcome as memsup_init()
 * takes it (then restore and ready, as a worker does), the rest as
 * memsup_process() handles them.  Returns 0 to go on, -1 when the SDK
 * would stop using the channel. */
static int run(int* welcomed, int peer_fd) {
  int got;
  while ((got = next_msg()) != 0) {
    if (got == -EPROTO) return -1;
    if (!*welcomed) {
      if (got < 0) return -1; /* a malformed welcome fails memsup_init() */
      if (g.in.type != MEMSUP_T_WELCOME) continue;
      if (g.in.version != MEMSUP_WIRE_VERSION) return -1;
      pthread_mutex_lock(&g.restore_mu);
      pthread_mutex_lock(&g.mu);
      take_welcome();
      pthread_mutex_unlock(&g.mu);
      pthread_mutex_unlock(&g.restore_mu);
      *welcomed = 1;
      const void* data;
      size_t len;
      int err = memsup_restore(&data, &len);
      if (err == 0 && len > 0 && memsup_crc32c(0, data, len) != g.state_crc)
        __builtin_trap(); /* restore vouched for bytes that do not match */
      if (memsup_ready() == -EPIPE) return -1;
    } else if (got > 0 && handle() == -EPIPE) {
      return -1;
    }
    drop_fds();
    drain_peer(peer_fd);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int sv[2], welcomed = 0;
  if (size == 0) return 0;
  rng = 0x9E3779B97F4A7C15ull ^ size;
  for (size_t i = 0; i < size; i++) rng = (rng ^ data[i]) * 0x100000001B3ull;
  if (rng == 0) rng = 1;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) abort();
  reset(sv[0]);
  if (memsup_reader_init(&peer) < 0) abort();
  uint8_t opts = data[0];
  data++, size--;
  if ((opts & 1) && size >= 16) {
    /* A memfd the welcome may claim, as if it had come with it. */
    int mfd = memfd_create("fuzz-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0 || write(mfd, data, 16) != 16) abort();
    g.rd.fds[g.rd.nfds++] = mfd;
    data += 16, size -= 16;
  }
  while (size > 0) {
    size_t n = next_chunk();
    if (n > size) n = size;
    size_t k = memsup_reader_put(&g.rd, data, n);
    if (run(&welcomed, sv[1]) < 0 || (k == 0 && n > 0)) break;
    data += k;
    size -= k;
  }
  drain_peer(sv[1]);
  if (g.map) munmap(g.map, g.state_bytes);
  if (g.state_fd >= 0) close(g.state_fd);
  g.map = NULL;
  g.state_fd = -1;
  memsup_reader_free(&g.rd);
  memsup_reader_free(&peer);
  close(sv[0]);
  close(sv[1]);
  g.fd = -1;
  return 0;
}
