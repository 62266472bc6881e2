/* log.c: stderr lines for people.  One fprintf per line so concurrent
 * writers (the worker shares our stderr) do not interleave mid-line. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static int verbosity;
/* memsup logs from its loop thread only: a plain static is enough. */
static char context[32];

void ms_log_set_verbosity(int v) { verbosity = v; }
int ms_log_verbosity(void) { return verbosity; }

void ms_log_set_context(const char* ctx) {
  snprintf(context, sizeof(context), "%s", ctx ? ctx : "");
}

const char* ms_log_context(void) { return context; }

static void vlog(const char* tag, const char* fmt, va_list ap) {
  char line[1024];
  vsnprintf(line, sizeof(line), fmt, ap);
  fprintf(stderr, "memsup: %s%s%s\n", context, tag, line);
}

void ms_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog("error: ", fmt, ap);
  va_end(ap);
}

void ms_warn(const char* fmt, ...) {
  va_list ap;
  if (verbosity < 0) return;
  va_start(ap, fmt);
  vlog("warning: ", fmt, ap);
  va_end(ap);
}

void ms_info(const char* fmt, ...) {
  va_list ap;
  if (verbosity < 0) return;
  va_start(ap, fmt);
  vlog("", fmt, ap);
  va_end(ap);
}

void ms_debug(const char* fmt, ...) {
  va_list ap;
  if (verbosity < 1) return;
  va_start(ap, fmt);
  vlog("", fmt, ap);
  va_end(ap);
}

const char* ms_fmt_bytes(char* buf, unsigned long long bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)bytes;
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    u++;
  }
  if (u == 0)
    snprintf(buf, 16, "%llu B", bytes);
  else
    snprintf(buf, 16, "%.1f %s", v, units[u]);
  return buf;
}
