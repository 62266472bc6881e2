/* addr.h: the "[ADDR:]PORT" syntax shared by --metrics and --listen.
 * Numeric addresses only: memsup never resolves names (a DNS lookup could
 * block start-up for seconds), except "localhost", which means 127.0.0.1.
 */
#ifndef MS_ADDR_H
#define MS_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct {
  struct sockaddr_storage ss; /* sockaddr_in or sockaddr_in6 */
  socklen_t len;
  char text[64]; /* "127.0.0.1:9464", "[::1]:9464" */
} ms_addr_t;

/* Parses "PORT" (address 127.0.0.1), "ADDR:PORT" (IPv4 or "localhost") or
 * "[IPV6]:PORT".  PORT is 0..65535; 0 asks the kernel for a free port.
 * Returns 0, or -EINVAL with a one-line reason (no prefix, no newline) in
 * err. */
int ms_addr_parse(const char* s, ms_addr_t* out, char* err, size_t errlen);

/* Writes "ADDR:PORT" for a bound socket address (to report port 0's
 * choice) into buf; returns buf. */
const char* ms_addr_format(const struct sockaddr* sa, char* buf, size_t len);

#endif
