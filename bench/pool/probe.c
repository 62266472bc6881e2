/* probe.c: a paced HTTP/1.1 client beside wrk, for latency by time.
 * wrk's Lua cannot say when each request was sent, so the p99 *during
 * restarts* needs its own client: C connections, one thread each, send
 * GET / on keep-alive every GAP_US and record the wall-clock send time,
 * the latency and the outcome of every request.  bench/pool/analyze.py
 * lines the records up with the workers' stop and start times.
 *
 *   probe PORT SECONDS CONNS GAP_US OUT
 * OUT: one line per request, "unix_send_s latency_us outcome", outcome a
 * status code, or connect / read / write / timeout (2 s), as wrk counts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  double t;
  float lat_us;
  short code; /* HTTP status, or <0: -1 connect, -2 read, -3 write, -4 timeout */
} rec_t;

typedef struct {
  pthread_t th;
  int port;
  double end;
  long gap_us;
  rec_t* r;
  size_t n, cap;
} prober_t;

static double unix_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void add(prober_t* p, double t, double lat, int code) {
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 65536;
    p->r = realloc(p->r, p->cap * sizeof(rec_t));
    if (p->r == NULL) abort();
  }
  p->r[p->n++] = (rec_t){t, (float)lat, (short)code};
}

static int dial(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {2, 0};
  int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, (struct sockaddr*)&a, sizeof(a)) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Reads one response; returns its status (and *keep), or a negative
 * outcome. */
static int read_response(int fd, int* keep) {
  char buf[4096];
  size_t len = 0;
  for (;;) {
    ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -4;
    if (r <= 0) return -2;
    len += (size_t)r;
    buf[len] = '\0';
    char* h = strstr(buf, "\r\n\r\n");
    if (h == NULL) {
      if (len == sizeof(buf) - 1) return -2;
      continue;
    }
    int code = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1) return -2;
    char* cl = strcasestr(buf, "\r\nContent-Length:");
    size_t body = cl ? strtoul(cl + 17, NULL, 10) : 0;
    *keep = strcasestr(buf, "\r\nConnection: close") == NULL;
    size_t have = len - (size_t)(h + 4 - buf);
    while (have < body) { /* small bodies: read and drop the rest */
      r = recv(fd, buf, sizeof(buf) - 1, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -4;
      if (r <= 0) return -2;
      have += (size_t)r;
    }
    return code;
  }
}

static void* run(void* arg) {
  prober_t* p = arg;
  static const char req[] = "GET / HTTP/1.1\r\nHost: probe\r\n\r\n";
  int fd = -1;
  double next = mono_s();
  while (mono_s() < p->end) {
    double t = unix_s(), t0 = mono_s();
    int code, keep = 0;
    if (fd < 0) fd = dial(p->port);
    if (fd < 0) {
      code = -1;
    } else if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) !=
               (ssize_t)(sizeof(req) - 1)) {
      code = -3;
    } else {
      code = read_response(fd, &keep);
    }
    add(p, t, (mono_s() - t0) * 1e6, code);
    if (fd >= 0 && (code < 0 || !keep)) {
      close(fd);
      fd = -1;
    }
    next += p->gap_us / 1e6;
    double wait = next - mono_s();
    if (wait > 0) {
      struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
      nanosleep(&ts, NULL);
    } else {
      next = mono_s(); /* late: no burst to catch up */
    }
  }
  if (fd >= 0) close(fd);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: probe PORT SECONDS CONNS GAP_US OUT\n");
    return 2;
  }
  int port = atoi(argv[1]), conns = atoi(argv[3]);
  double secs = atof(argv[2]);
  long gap = atol(argv[4]);
  if (port <= 0 || conns <= 0 || conns > 256 || secs <= 0 || gap <= 0) return 2;
  prober_t* ps = calloc((size_t)conns, sizeof(*ps));
  if (ps == NULL) return 1;
  double end = mono_s() + secs;
  for (int i = 0; i < conns; i++) {
    ps[i] = (prober_t){.port = port, .end = end, .gap_us = gap};
    if (pthread_create(&ps[i].th, NULL, run, &ps[i]) != 0) return 1;
  }
  FILE* f = fopen(argv[5], "w");
  if (f == NULL) {
    perror(argv[5]);
    return 1;
  }
  static const char* names[] = {"", "connect", "read", "write", "timeout"};
  for (int i = 0; i < conns; i++) {
    pthread_join(ps[i].th, NULL);
    for (size_t k = 0; k < ps[i].n; k++) {
      rec_t* r = &ps[i].r[k];
      if (r->code >= 0)
        fprintf(f, "%.6f %.0f %d\n", r->t, r->lat_us, r->code);
      else
        fprintf(f, "%.6f %.0f %s\n", r->t, r->lat_us, names[-r->code]);
    }
  }
  return fclose(f) == 0 ? 0 : 1;
}
