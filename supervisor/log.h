/* log.h: memsup's human-readable lines on stderr ("memsup: ...").
 * Machine-readable events go to the restart log (restartlog.h), not here.
 */
#ifndef MS_LOG_H
#define MS_LOG_H

/* -1 quiet (errors only), 0 normal (restarts, crashes), 1 verbose. */
void ms_log_set_verbosity(int v);
int ms_log_verbosity(void);
/* Text put after "memsup: " on every line until reset with NULL ("slot 2:
 * " while a pool's slot acts); copied, at most 31 bytes. */
void ms_log_set_context(const char* ctx);
/* The context now ("" when none), to put back after a nested one. */
const char* ms_log_context(void);

void ms_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void ms_warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void ms_info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void ms_debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/* Formats bytes as "130.2 MiB" into buf (at least 16 bytes); returns buf. */
const char* ms_fmt_bytes(char* buf, unsigned long long bytes);

#endif
