/* offload.c: the threadpool jobs of offload.h.  Each job owns its copy of
 * what it reads (a dup of a memfd, a pid); results go back to the loop
 * thread through the caller's callback, never through shared state. */
#include "offload.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* ---- evidence ------------------------------------------------------------ */

typedef struct {
  uv_work_t req;
  pid_t pid;
  int tree;
  ms_rank_t rank;
  unsigned id;
  int n;
  ms_mapping_t rows[MS_EVIDENCE_READ_ROWS];
  ms_evidence_where_t where;
  ms_evidence_cb cb;
  void* arg;
} evidence_t;

static void evidence_work(uv_work_t* req) {
  evidence_t* e = req->data;
  e->n = ms_evidence_read(e->pid, e->tree, e->rank, e->rows, MS_EVIDENCE_READ_ROWS,
                          &e->where);
}

static void evidence_done(uv_work_t* req, int status) {
  evidence_t* e = req->data;
  (void)status;
  e->cb(e->arg, e->id, e->n, e->rows, &e->where);
  free(e);
}

void ms_offload_evidence(uv_loop_t* loop, pid_t pid, int tree, ms_rank_t rank,
                         unsigned id, ms_evidence_cb cb, void* arg) {
  evidence_t* e = calloc(1, sizeof(*e));
  if (e == NULL) {
    cb(arg, id, -ENOMEM, NULL, NULL);
    return;
  }
  e->pid = pid;
  e->tree = tree;
  e->rank = rank;
  e->id = id;
  e->cb = cb;
  e->arg = arg;
  e->req.data = e;
  int err = uv_queue_work(loop, &e->req, evidence_work, evidence_done);
  if (err < 0) {
    free(e);
    cb(arg, id, err, NULL, NULL);
  }
}

/* ---- the check of a state memfd ------------------------------------------ */

typedef struct {
  uv_work_t req;
  ms_ev_state_t st;
  uint64_t max;
  int err;
  ms_verify_cb cb;
  void* arg;
} verify_t;

static void verify_work(uv_work_t* req) {
  verify_t* v = req->data;
  v->err = ms_state_verify(v->st.fd, v->st.bytes, v->st.crc32c, v->max);
}

static void verify_done(uv_work_t* req, int status) {
  verify_t* v = req->data;
  (void)status;
  v->cb(v->arg, &v->st, v->err);
  free(v);
}

void ms_offload_verify(uv_loop_t* loop, const ms_ev_state_t* st, uint64_t max,
                       ms_verify_cb cb, void* arg) {
  if (st->fd < 0) { /* a "state" message without its memfd */
    cb(arg, st, -EBADMSG);
    return;
  }
  verify_t* v = calloc(1, sizeof(*v));
  if (v == NULL) {
    cb(arg, st, -ENOMEM);
    return;
  }
  v->st = *st;
  v->max = max;
  v->cb = cb;
  v->arg = arg;
  v->req.data = v;
  int err = uv_queue_work(loop, &v->req, verify_work, verify_done);
  if (err < 0) {
    free(v);
    cb(arg, st, err);
  }
}

/* ---- the store in --state-dir ------------------------------------------- */

typedef struct {
  uv_work_t req;
  ms_store_t* owner;
  ms_state_t copy; /* its own dup of the memfd */
  int err;
} store_t;

static void store_work(uv_work_t* req) {
  store_t* s = req->data;
  s->err = ms_state_store(s->owner->dir, &s->copy);
}

static void store_done(uv_work_t* req, int status) {
  store_t* s = req->data;
  ms_store_t* owner = s->owner;
  (void)status;
  if (s->err < 0)
    ms_error("store state in %s: %s (the previous copy is kept)", owner->dir,
             strerror(-s->err));
  else
    ms_debug("state (%" PRIu64 " bytes) stored in %s", s->copy.bytes, owner->dir);
  ms_state_clear(&s->copy);
  free(s);
  owner->storing = 0;
  if (owner->again) {
    owner->again = 0;
    ms_store_request(owner);
  }
}

void ms_store_init(ms_store_t* s, uv_loop_t* loop, const char* dir,
                   const ms_state_t* state) {
  memset(s, 0, sizeof(*s));
  s->loop = loop;
  s->dir = dir;
  s->state = state;
}

void ms_store_request(ms_store_t* s) {
  if (s->dir == NULL || s->state->fd < 0 || s->stopped) return;
  if (s->storing) {
    s->again = 1;
    return;
  }
  store_t* job = calloc(1, sizeof(*job));
  if (job == NULL) return;
  job->owner = s;
  /* Close-on-exec: a worker spawned while the store runs must not inherit
   * (and pin) the state. */
  int err = ms_state_dup(s->state, &job->copy);
  if (err < 0) {
    ms_error("store state: dup: %s", strerror(-err));
    free(job);
    return;
  }
  job->req.data = job;
  s->storing = 1;
  if (uv_queue_work(s->loop, &job->req, store_work, store_done) < 0) {
    s->storing = 0;
    ms_state_clear(&job->copy);
    free(job);
  }
}

void ms_store_stop(ms_store_t* s) { s->stopped = 1; }
