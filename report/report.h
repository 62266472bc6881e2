/* report.h: `memsup report LOG...`, which reads memsup's own JSON-lines
 * logs (--log and --sample-log) and prints what a person hunting a leak
 * asks for.  It only reads files; it never talks to a running memsup.
 */
#ifndef MS_REPORT_H
#define MS_REPORT_H

/* Runs the report command; argv[0] is "report".  Prints to stdout (the
 * report, text or --json) and stderr (errors).  Returns the exit code:
 * 0 ok, 100 usage error, 111 I/O error (unreadable log, unwritable SVG). */
int ms_report_main(int argc, char** argv);

#endif
