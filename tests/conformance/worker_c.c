/* worker_c.c: the conformance worker for the C SDK.  Every SDK has one
 * (worker.py, goworker/main.go) and all behave the same, as driver.c's
 * header describes: the driver checks the SDK through them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memsup.h"

static long long counter;

static int save_cb(memsup_state_t* st, void* arg) {
  char text[64];
  (void)arg;
  if (getenv("CONF_FAIL_SAVE")) return -EIO;
  int n = snprintf(text, sizeof(text), "conformance counter=%lld\n", counter);
  return memsup_state_write(st, text, (size_t)n);
}

int main(void) {
  const void* data;
  size_t len;
  setvbuf(stdout, NULL, _IOLBF, 0);
  memsup_init();
  int was_active = memsup_active();
  printf("init active=%d\n", was_active);
  memsup_on_save(save_cb, NULL);
  int err = memsup_restore(&data, &len);
  if (err == 0 && len < 64) {
    char text[64] = {0};
    memcpy(text, data, len);
    if (sscanf(text, "conformance counter=%lld", &counter) != 1) counter = -1;
    printf("restore restored %lld\n", counter);
  } else {
    printf("restore %s\n", err == -EBADMSG ? "corrupt" : "none");
  }
  counter++;
  memsup_gauge_set("conf.counter", (double)counter);
  memsup_ready();
  printf("ready\n");
  printf("checkpoint %s\n", memsup_checkpoint() == 0 ? "sent" : "failed");
  memsup_start_thread();
  for (;;) {
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    if (was_active && !memsup_active()) {
      was_active = 0;
      printf("gone\n");
      /* Every call must stay harmless once memsup has gone. */
      memsup_gauge_set("conf.after", 1);
      memsup_report();
      memsup_checkpoint();
      memsup_process();
      printf("after-gone alive\n");
    }
  }
}
