/* httpleak.c: a small HTTP/1.1 server worker with a per-request leak, for
 * the pool load test (bench/pool/) and as an example of the C SDK in an
 * event loop.  One thread, epoll; keep-alive and pipelining; GET and HEAD.
 * Its bug: every request is appended to an in-memory access log that is
 * never trimmed, --leak-bytes-per-req bytes each, all of them written.
 *
 * Sockets: under memsup (--listen) or systemd it accepts on the sockets
 * passed at fd 3.. (LISTEN_FDS, LISTEN_PID = this process); otherwise it
 * binds --host:--port itself with SO_REUSEPORT, so several independent
 * copies share the port (how PM2's fork mode runs a non-Node program).
 *
 * State (saved through the SDK, handed back by memsup): text
 *   "httpleak 1\nslot S\ngen G\nrequests R\n"
 * S is the slot that saved it ($MEMSUP_WORKER), so a test can check that
 * slot k got slot k's state back: GET /stats shows both.
 *
 * SIGTERM or SIGINT: stop accepting, answer the request in hand on every
 * connection (and, on an idle keep-alive connection, the next one that
 * arrives within --drain-ms) with "Connection: close", then exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "memsup.h"

#define MAX_LISTEN 16
#define IN_MAX 16384 /* request head and body bytes buffered per connection */
#define MAX_EVENTS 64
#define CHECKPOINT_MS 2000

/* One entry of the access log: the leak.  Kept reachable from a global
 * list, as a real never-trimmed log is; the compiler must then keep the
 * malloc and the writes (an unused malloc+memset may be elided). */
typedef struct logrec_s {
  struct logrec_s* next;
  double when;
  size_t len; /* whole record, header included */
  char line[128];
} logrec_t;

typedef struct conn_s {
  int fd;
  struct conn_s *prev, *next; /* all open connections, for the drain */
  char in[IN_MAX];
  size_t in_len;
  char* out; /* pending response bytes */
  size_t out_len, out_off, out_cap;
  int close_after; /* close once out is flushed */
  int want_out;    /* EPOLLOUT registered */
  int lingering;   /* answered and shut down for writing: reading to EOF */
  double idle_deadline; /* draining or lingering: close if idle by then */
} conn_t;

static struct {
  int slot;          /* $MEMSUP_WORKER, -1 when not set */
  int restored_slot; /* slot of the restored state, -1 without one */
  uint64_t gen, restored, requests; /* requests: restored + this life */
  uint64_t bad_requests;
  double started;
} st = {.slot = -1, .restored_slot = -1};

static logrec_t* access_log; /* the leak */
static uint64_t leaked_bytes, log_entries;
static size_t leak_bytes = 64 * 1024;
static double drain_ms = 2000;
static size_t body_bytes = 13;
static char* body; /* what GET / answers */

static int epfd = -1, sigfd = -1;
static int lfds[MAX_LISTEN];
static size_t nlisten;
static conn_t* conns;
static size_t nconns, nlinger;
static int draining;
static double drain_deadline;

static void usage(void) {
  fprintf(stderr,
          "usage: httpleak [--port P] [--host ADDR] [--leak-bytes-per-req N]\n"
          "  [--drain-ms MS] [--body-bytes N]\n"
          "Accepts on LISTEN_FDS sockets when started by memsup --listen or\n"
          "systemd, otherwise binds HOST:P (default 127.0.0.1) with "
          "SO_REUSEPORT.\n");
  exit(2);
}

static double num(const char* s, const char* what) {
  char* end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno || v < 0) {
    fprintf(stderr, "httpleak: bad %s '%s'\n", what, s);
    usage();
  }
  return v;
}

/* Wall clock, for the lines a benchmark lines up with its own clock. */
static double unix_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- state through the SDK ---- */

static int save_cb(memsup_state_t* s, void* arg) {
  char text[256];
  (void)arg;
  int n = snprintf(text, sizeof(text),
                   "httpleak 1\nslot %d\ngen %" PRIu64 "\nrequests %" PRIu64
                   "\n",
                   st.slot, st.gen, st.requests);
  return memsup_state_write(s, text, (size_t)n);
}

static void restore(void) {
  const void* data;
  size_t len;
  int err = memsup_restore(&data, &len);
  if (err == 0) {
    char text[256];
    int slot, used = 0;
    uint64_t gen, requests;
    size_t n = len < sizeof(text) - 1 ? len : sizeof(text) - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    if (sscanf(text,
               "httpleak 1\nslot %d\ngen %" SCNu64 "\nrequests %" SCNu64 "\n%n",
               &slot, &gen, &requests, &used) == 3 &&
        (size_t)used == len) {
      st.restored_slot = slot;
      st.gen = gen;
      st.requests = st.restored = requests;
      printf("httpleak[pid %d slot %d]: restored slot %d's state: gen %" PRIu64
             ", %" PRIu64 " requests\n",
             (int)getpid(), st.slot, slot, gen, requests);
      if (slot != st.slot)
        printf("httpleak[pid %d slot %d]: WARNING: state saved by slot %d\n",
               (int)getpid(), st.slot, slot);
    } else {
      printf("httpleak[pid %d]: saved state unreadable, starting fresh\n",
             (int)getpid());
    }
  } else if (err == -EBADMSG) {
    printf("httpleak[pid %d]: saved state corrupt (crc), starting fresh\n",
           (int)getpid());
  }
  st.gen++;
}

/* ---- sockets ---- */

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  return 0;
}

/* The sockets memsup or systemd passed, checked as sd_listen_fds() does:
 * only when LISTEN_PID names this process.  Returns how many, 0 if none. */
static int adopt_listen_fds(void) {
  const char* fds = getenv("LISTEN_FDS");
  const char* pid = getenv("LISTEN_PID");
  if (fds == NULL || pid == NULL || atol(pid) != (long)getpid()) return 0;
  int n = atoi(fds);
  if (n <= 0 || n > MAX_LISTEN) {
    fprintf(stderr, "httpleak: LISTEN_FDS=%s: want 1..%d\n", fds, MAX_LISTEN);
    return -EINVAL;
  }
  for (int i = 0; i < n; i++) {
    int fd = 3 + i;
    /* O_NONBLOCK is on the open file description, which every worker of
     * the pool shares: all set it alike.  Needed because another worker
     * may take the connection between our wakeup and our accept(). */
    if (set_nonblock(fd) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
      fprintf(stderr, "httpleak: fd %d: %s\n", fd, strerror(errno));
      return -EBADF;
    }
    lfds[nlisten++] = fd;
  }
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDNAMES");
  return n;
}

static int bind_port(const char* host, int port) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  int one = 1;
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
    fprintf(stderr, "httpleak: --host %s: not an IPv4 address\n", host);
    return -EINVAL;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
      bind(fd, (struct sockaddr*)&a, sizeof(a)) < 0 ||
      listen(fd, SOMAXCONN) < 0) {
    int e = errno;
    fprintf(stderr, "httpleak: listen %s:%d: %s\n", host, port, strerror(e));
    if (fd >= 0) close(fd);
    return -e;
  }
  lfds[nlisten++] = fd;
  return 0;
}

/* ---- connections ---- */

static void conn_close(conn_t* c) {
  if (c->lingering) nlinger--;
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  if (c->prev) c->prev->next = c->next;
  else conns = c->next;
  if (c->next) c->next->prev = c->prev;
  nconns--;
  free(c->out);
  free(c);
}

/* The last response is written: shut down our side and read what the
 * client still sends until it closes (a lingering close, as nginx does),
 * because closing with unread bytes sends a reset, which can destroy the
 * response before the client has read it. */
static void conn_done(conn_t* c) {
  if (shutdown(c->fd, SHUT_WR) < 0) {
    conn_close(c);
    return;
  }
  c->lingering = 1;
  c->in_len = 0;
  c->idle_deadline = now_s() + 1;
  nlinger++;
}

static int out_append(conn_t* c, const char* p, size_t n) {
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n) cap *= 2;
    char* o = realloc(c->out, cap);
    if (o == NULL) return -ENOMEM;
    c->out = o;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
  return 0;
}

/* Writes what is pending; returns 0 when all is written or the socket is
 * full (EPOLLOUT then armed), -1 when the connection is gone. */
static int conn_flush(conn_t* c) {
  while (c->out_off < c->out_len) {
    ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                     MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = 1;
      }
      return 0;
    }
    if (w < 0) return -1;
    c->out_off += (size_t)w;
  }
  c->out_off = c->out_len = 0;
  if (c->want_out) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = 0;
  }
  return 0;
}

static void leak(const char* line, size_t linelen) {
  if (leak_bytes < sizeof(logrec_t)) return;
  logrec_t* r = malloc(leak_bytes);
  if (r == NULL) return;
  /* Every byte written, so the leak is resident, as a log's text is. */
  memset(r, 'L', leak_bytes);
  r->when = now_s();
  r->len = leak_bytes;
  if (linelen >= sizeof(r->line)) linelen = sizeof(r->line) - 1;
  memcpy(r->line, line, linelen);
  r->line[linelen] = '\0';
  r->next = access_log;
  access_log = r;
  leaked_bytes += leak_bytes;
  log_entries++;
}

static int respond(conn_t* c, int code, const char* reason, const char* ctype,
                   const char* b, size_t blen, int head_only, int keep) {
  char h[512];
  int n = snprintf(h, sizeof(h),
                   "HTTP/1.1 %d %s\r\nServer: httpleak\r\n"
                   "Content-Type: %s\r\nContent-Length: %zu\r\n"
                   "Connection: %s\r\n\r\n",
                   code, reason, ctype, blen, keep ? "keep-alive" : "close");
  if (out_append(c, h, (size_t)n) < 0) return -1;
  if (!head_only && blen && out_append(c, b, blen) < 0) return -1;
  return 0;
}

static int stats_json(char* buf, size_t cap) {
  char slot[16], rslot[16];
  if (st.slot >= 0) snprintf(slot, sizeof(slot), "%d", st.slot);
  else snprintf(slot, sizeof(slot), "null");
  if (st.restored_slot >= 0)
    snprintf(rslot, sizeof(rslot), "%d", st.restored_slot);
  else snprintf(rslot, sizeof(rslot), "null");
  return snprintf(buf, cap,
                  "{\"slot\":%s,\"restored_slot\":%s,\"gen\":%" PRIu64
                  ",\"pid\":%d,\"requests\":%" PRIu64
                  ",\"requests_restored\":%" PRIu64
                  ",\"requests_this_life\":%" PRIu64
                  ",\"leaked_bytes\":%" PRIu64 ",\"connections\":%zu"
                  ",\"uptime_s\":%.3f}\n",
                  slot, rslot, st.gen, (int)getpid(), st.requests, st.restored,
                  st.requests - st.restored, leaked_bytes, nconns,
                  now_s() - st.started);
}

/* Case-insensitive search for a header's value in the head (the bytes
 * after the request line, up to the blank line).  Returns its length and
 * sets *val, or -1. */
static long header(const char* head, size_t len, const char* name,
                   const char** val) {
  size_t nl = strlen(name);
  const char* p = head;
  const char* end = head + len;
  while (p < end) {
    const char* eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL) eol = end;
    if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 &&
        p[nl] == ':') {
      const char* v = p + nl + 1;
      while (v < eol && (*v == ' ' || *v == '\t')) v++;
      const char* ve = eol;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
      *val = v;
      return ve - v;
    }
    p = eol + 1;
  }
  return -1;
}

static int has_token(const char* v, long n, const char* tok) {
  size_t tl = strlen(tok);
  for (long i = 0; i + (long)tl <= n; i++)
    if (strncasecmp(v + i, tok, tl) == 0) return 1;
  return 0;
}

/* Answers every complete request buffered on c.  Returns -1 when the
 * connection must be closed now. */
static int serve(conn_t* c) {
  for (;;) {
    char* hend = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (hend == NULL) {
      if (c->in_len == IN_MAX) { /* head too large: refuse and close */
        st.bad_requests++;
        respond(c, 431, "Request Header Fields Too Large", "text/plain", "",
                0, 0, 0);
        c->close_after = 1;
        c->in_len = 0;
      }
      return 0;
    }
    size_t head_len = (size_t)(hend - c->in) + 4;
    char* eol = memchr(c->in, '\r', head_len);
    size_t line_len = (size_t)(eol - c->in);
    char method[16], path[256], version[16];
    int ok = 0;
    {
      char line[400];
      size_t n = line_len < sizeof(line) - 1 ? line_len : sizeof(line) - 1;
      memcpy(line, c->in, n);
      line[n] = '\0';
      ok = sscanf(line, "%15s %255s %15s", method, path, version) == 3 &&
           strncmp(version, "HTTP/1.", 7) == 0;
    }
    const char* v;
    long vn;
    size_t body_len = 0;
    if (ok && (vn = header(eol + 2, head_len - line_len - 2, "Content-Length",
                           &v)) >= 0) {
      char tmp[24];
      char* e;
      if (vn == 0 || vn >= (long)sizeof(tmp)) ok = 0;
      else {
        memcpy(tmp, v, (size_t)vn);
        tmp[vn] = '\0';
        unsigned long long l = strtoull(tmp, &e, 10);
        if (*e || l > IN_MAX - head_len) ok = 0;
        else body_len = (size_t)l;
      }
    }
    if (ok && head_len + body_len > c->in_len) return 0; /* body to come */
    if (!ok) {
      st.bad_requests++;
      respond(c, 400, "Bad Request", "text/plain", "", 0, 0, 0);
      c->close_after = 1;
      c->in_len = 0;
      return 0;
    }
    int keep = strcmp(version, "HTTP/1.0") != 0;
    vn = header(eol + 2, head_len - line_len - 2, "Connection", &v);
    if (vn >= 0 && has_token(v, vn, "close")) keep = 0;
    if (vn >= 0 && has_token(v, vn, "keep-alive")) keep = 1;
    if (draining) keep = 0;

    st.requests++;
    leak(c->in, line_len);
    int head_only = strcmp(method, "HEAD") == 0;
    int r;
    if (strcmp(method, "GET") != 0 && !head_only) {
      r = respond(c, 405, "Method Not Allowed", "text/plain", "", 0, 0, keep);
    } else if (strcmp(path, "/stats") == 0) {
      char js[512];
      int n = stats_json(js, sizeof(js));
      r = respond(c, 200, "OK", "application/json", js, (size_t)n, head_only,
                  keep);
    } else if (strcmp(path, "/healthz") == 0) {
      r = respond(c, 200, "OK", "text/plain", "ok\n", 3, head_only, keep);
    } else if (strcmp(path, "/") == 0 || strncmp(path, "/?", 2) == 0) {
      r = respond(c, 200, "OK", "text/plain", body, body_bytes, head_only,
                  keep);
    } else {
      r = respond(c, 404, "Not Found", "text/plain", "", 0, head_only, keep);
    }
    if (r < 0) return -1;
    size_t used = head_len + body_len;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (!keep) {
      c->close_after = 1;
      c->in_len = 0;
      return 0;
    }
  }
}

static void on_readable(conn_t* c) {
  if (c->lingering) {
    char junk[4096];
    ssize_t r;
    while ((r = recv(c->fd, junk, sizeof(junk), 0)) > 0) continue;
    if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
      conn_close(c);
    return;
  }
  for (;;) {
    if (c->in_len == IN_MAX) break; /* serve() answers 431 */
    ssize_t r = recv(c->fd, c->in + c->in_len, IN_MAX - c->in_len, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (r <= 0) { /* peer closed or reset */
      conn_close(c);
      return;
    }
    c->in_len += (size_t)r;
    if (c->close_after) c->in_len = 0; /* nothing more is answered */
  }
  if (!c->close_after && serve(c) < 0) {
    conn_close(c);
    return;
  }
  if (conn_flush(c) < 0) {
    conn_close(c);
    return;
  }
  if (c->close_after && c->out_len == 0) {
    conn_done(c);
    return;
  }
  c->idle_deadline = draining ? now_s() + drain_ms / 1000 : 0;
}

static void accept_all(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      /* EAGAIN: the queue is empty (or another worker took it).  EMFILE
       * and the like: try again on the next wakeup. */
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        fprintf(stderr, "httpleak: accept: %s\n", strerror(errno));
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn_t* c = calloc(1, sizeof(*c));
    if (c == NULL) {
      close(fd);
      continue;
    }
    c->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
      close(fd);
      free(c);
      continue;
    }
    c->next = conns;
    if (conns) conns->prev = c;
    conns = c;
    nconns++;
  }
}

/* SIGTERM/SIGINT: stop accepting (our copy of the listening sockets
 * closes; under memsup the socket itself stays open in memsup and the
 * other workers), finish what each connection has in hand. */
static void start_drain(void) {
  double now = now_s();
  draining = 1;
  drain_deadline = now + drain_ms / 1000;
  for (size_t i = 0; i < nlisten; i++) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, lfds[i], NULL);
    close(lfds[i]);
  }
  nlisten = 0;
  printf("httpleak[pid %d slot %d]: stopping at %.6f: %zu connections to "
         "finish, %" PRIu64 " requests served (%" PRIu64 " this life)\n",
         (int)getpid(), st.slot, unix_s(), nconns, st.requests,
         st.requests - st.restored);
  for (conn_t *c = conns, *next; c; c = next) {
    next = c->next;
    if (c->out_len == 0 && c->in_len == 0)
      c->idle_deadline = now + drain_ms / 1000;
  }
}

static void expire_idle(void) {
  double now = now_s();
  for (conn_t *c = conns, *next; c; c = next) {
    next = c->next;
    if ((draining && now >= drain_deadline) ||
        (c->idle_deadline > 0 && now >= c->idle_deadline && c->out_len == 0))
      conn_close(c);
  }
}

int main(int argc, char** argv) {
  static const struct option longopts[] = {
      {"port", required_argument, NULL, 'p'},
      {"host", required_argument, NULL, 'H'},
      {"leak-bytes-per-req", required_argument, NULL, 'l'},
      {"drain-ms", required_argument, NULL, 'd'},
      {"body-bytes", required_argument, NULL, 'b'},
      {NULL, 0, NULL, 0}};
  const char* host = "127.0.0.1";
  int port = -1, c, err;

  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'p': port = (int)num(optarg, "port"); break;
      case 'H': host = optarg; break;
      case 'l': leak_bytes = (size_t)num(optarg, "byte count"); break;
      case 'd': drain_ms = num(optarg, "duration"); break;
      case 'b': body_bytes = (size_t)num(optarg, "byte count"); break;
      default: usage();
    }
  }
  if (optind != argc || port > 65535) usage();
  setvbuf(stdout, NULL, _IOLBF, 0);

  /* The slot: memsup's, else PM2's instance number (-i N), so that the
   * lines of a PM2 run can be told apart the same way. */
  const char* w = getenv("MEMSUP_WORKER");
  if (w == NULL || *w == '\0') w = getenv("NODE_APP_INSTANCE");
  if (w && *w) st.slot = atoi(w);
  body = malloc(body_bytes + 1);
  if (body == NULL) return 1;
  if (body_bytes == 13) memcpy(body, "hello, world\n", 13);
  else memset(body, 'x', body_bytes);

  /* Signals arrive through the loop: no handler races with it. */
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  signal(SIGPIPE, SIG_IGN);
  sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (sigfd < 0 || epfd < 0) {
    fprintf(stderr, "httpleak: signalfd/epoll: %s\n", strerror(errno));
    return 1;
  }

  int n = adopt_listen_fds();
  if (n < 0) return 1;
  if (n == 0) {
    if (port < 0) {
      fprintf(stderr, "httpleak: no LISTEN_FDS sockets and no --port\n");
      usage();
    }
    if (bind_port(host, port) < 0) return 1;
  }

  err = memsup_init();
  if (err < 0)
    fprintf(stderr, "httpleak: memsup_init: %s (running without memsup)\n",
            strerror(-err));
  memsup_on_save(save_cb, NULL);
  restore();
  st.started = now_s();

  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)sigfd};
  /* data.u64 tags: small numbers are fds we own (signal, memsup,
   * listeners); connections are pointers (always > 4096). */
  epoll_ctl(epfd, EPOLL_CTL_ADD, sigfd, &ev);
  int mfd = memsup_fd();
  if (mfd >= 0) {
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t)mfd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, mfd, &ev);
  }
  for (size_t i = 0; i < nlisten; i++) {
    /* EPOLLEXCLUSIVE: one worker of the pool woken per connection, not
     * all of them (the thundering herd). */
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u64 = (uint64_t)lfds[i];
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfds[i], &ev);
  }
  memsup_ready();
  printf("httpleak[pid %d slot %d gen %" PRIu64 "]: serving at %.6f on %zu "
         "socket%s, leaking %zu bytes per request\n",
         (int)getpid(), st.slot, st.gen, unix_s(), nlisten,
         nlisten == 1 ? "" : "s", leak_bytes);

  int interval = mfd >= 0 ? memsup_interval_ms() : -1;
  if (interval <= 0 && mfd >= 0) interval = 1000;
  double next_cp = now_s() + CHECKPOINT_MS / 1000.0, next_proc = 0;
  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    int timeout = interval;
    if (draining || (nlinger && (timeout < 0 || timeout > 100))) timeout = 100;
    int ne = epoll_wait(epfd, evs, MAX_EVENTS, timeout);
    if (ne < 0 && errno != EINTR) {
      fprintf(stderr, "httpleak: epoll_wait: %s\n", strerror(errno));
      return 1;
    }
    int memsup_readable = 0;
    for (int i = 0; i < ne; i++) {
      uint64_t tag = evs[i].data.u64;
      if (tag == (uint64_t)sigfd) {
        struct signalfd_siginfo si;
        while (read(sigfd, &si, sizeof(si)) == sizeof(si))
          if (!draining) start_drain();
      } else if (mfd >= 0 && tag == (uint64_t)mfd) {
        memsup_readable = 1;
      } else if (tag < 4096) {
        if (!draining) accept_all((int)tag);
      } else {
        conn_t* cn = evs[i].data.ptr;
        if (evs[i].events & EPOLLOUT) {
          if (conn_flush(cn) < 0) {
            conn_close(cn);
            continue;
          }
          if (cn->close_after && cn->out_len == 0 && !cn->lingering) {
            conn_done(cn);
            continue;
          }
        }
        if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(cn);
      }
    }
    double now = now_s();
    if (mfd >= 0 && (memsup_readable || now >= next_proc)) {
      memsup_gauge_set("requests", (double)st.requests);
      memsup_gauge_set("connections", (double)nconns);
      memsup_gauge_set("leak.bytes", (double)leaked_bytes);
      memsup_gauge_set("log.entries", (double)log_entries);
      memsup_process(); /* answers save (save_cb runs here) and reports */
      next_proc = now + interval / 1000.0;
    }
    /* A checkpoint keeps a recent state if the worker crashes outright. */
    if (mfd >= 0 && !draining && now >= next_cp) {
      memsup_checkpoint();
      next_cp = now + CHECKPOINT_MS / 1000.0;
    }
    if (draining || nlinger) expire_idle();
    if (draining && nconns == 0) break;
  }
  printf("httpleak[pid %d slot %d]: stopped after %" PRIu64
         " requests (%" PRIu64 " this life)\n",
         (int)getpid(), st.slot, st.requests, st.requests - st.restored);
  /* _exit: the access log is the leak on purpose; freeing it is not the
   * point, and a sanitizer's leak report at exit would change the status. */
  fflush(stdout);
  _exit(0);
}
