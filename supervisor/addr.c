/* addr.c: "[ADDR:]PORT" parsing and formatting; pure, no I/O. */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static int parse_port(const char* s, unsigned* out) {
  unsigned v = 0;
  if (*s == '\0') return -EINVAL;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -EINVAL;
    v = v * 10 + (unsigned)(*s - '0');
    if (v > 65535) return -ERANGE;
  }
  *out = v;
  return 0;
}

int ms_addr_parse(const char* s, ms_addr_t* out, char* err, size_t errlen) {
  char host[64];
  const char* port;
  unsigned p;
  int v6 = 0;

  memset(out, 0, sizeof(*out));
  if (s == NULL || *s == '\0') {
    snprintf(err, errlen, "empty address: expected [ADDR:]PORT");
    return -EINVAL;
  }
  if (s[0] == '[') {
    const char* close = strchr(s, ']');
    if (close == NULL || close[1] != ':' ||
        (size_t)(close - s - 1) >= sizeof(host)) {
      snprintf(err, errlen, "'%s': expected [IPV6]:PORT, e.g. [::1]:9464", s);
      return -EINVAL;
    }
    memcpy(host, s + 1, (size_t)(close - s - 1));
    host[close - s - 1] = '\0';
    port = close + 2;
    v6 = 1;
  } else {
    const char* colon = strchr(s, ':');
    if (colon == NULL) {
      strcpy(host, "127.0.0.1");
      port = s;
    } else {
      if (strchr(colon + 1, ':') != NULL) {
        snprintf(err, errlen,
                 "'%s': an IPv6 address goes in brackets, "
                 "e.g. [::1]:9464",
                 s);
        return -EINVAL;
      }
      if (colon == s || (size_t)(colon - s) >= sizeof(host)) {
        snprintf(err, errlen,
                 "'%s': expected [ADDR:]PORT, e.g. "
                 "127.0.0.1:9464 or 9464",
                 s);
        return -EINVAL;
      }
      memcpy(host, s, (size_t)(colon - s));
      host[colon - s] = '\0';
      port = colon + 1;
    }
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
  }
  int r = parse_port(port, &p);
  if (r < 0) {
    snprintf(err, errlen, "'%s': port must be a number from 0 to 65535", s);
    return -EINVAL;
  }
  if (v6) {
    struct sockaddr_in6* a = (struct sockaddr_in6*)&out->ss;
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) {
      snprintf(err, errlen, "'%s': '%s' is not a numeric IPv6 address", s,
               host);
      return -EINVAL;
    }
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)p);
    out->len = sizeof(*a);
  } else {
    struct sockaddr_in* a = (struct sockaddr_in*)&out->ss;
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) {
      snprintf(err, errlen,
               "'%s': '%s' is not a numeric IPv4 address "
               "(names are not resolved)",
               s, host);
      return -EINVAL;
    }
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)p);
    out->len = sizeof(*a);
  }
  ms_addr_format((struct sockaddr*)&out->ss, out->text, sizeof(out->text));
  return 0;
}

const char* ms_addr_format(const struct sockaddr* sa, char* buf, size_t len) {
  char ip[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6* a = (const struct sockaddr_in6*)sa;
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
    snprintf(buf, len, "[%s]:%u", ip, ntohs(a->sin6_port));
  } else if (sa->sa_family == AF_INET) {
    const struct sockaddr_in* a = (const struct sockaddr_in*)sa;
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
    snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
  } else {
    snprintf(buf, len, "(family %d)", sa->sa_family);
  }
  return buf;
}
