# memsup: supervisor, child SDK, examples and tests.  Linux only.
#
#   make            build/memsup, build/libmemsup.{a,so}, examples
#   make test       unit tests (cmocka) + integration tests on real processes
#   make check      the same tests with memsup built by clang under ASan+UBSan
#                   (build-san/), then each fuzz target for FUZZ_SMOKE_SECONDS
#   make valgrind   integration tests with memsup under valgrind
#   make fuzz       libFuzzer run of every tests/fuzz/fuzz_*.c for FUZZ_SECONDS
#   make deps       install missing Debian packages (apt-get, non-interactive)
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX  ?= /usr/local
CFLAGS  ?= -O2 -g
CC      ?= cc
BUILD   ?= build
VERSION := 0.1.0

WARN     = -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE
# _FORTIFY_SOURCE needs optimisation; the sanitizer build turns it off.
FORTIFY ?= -D_FORTIFY_SOURCE=2
FINAL_CFLAGS = $(WARN) $(FORTIFY) $(CFLAGS) $(SAN) -fPIC -Ichild-sdk/include \
               -Isupervisor -Ireport -DMEMSUP_VERSION='"$(VERSION)"' -MMD -MP
FINAL_LDFLAGS = $(LDFLAGS) $(SAN)

# What building and testing need; xmllint (libxml2-utils) checks report SVGs.
DEB_PKGS = gcc make pkg-config libuv1-dev libcjson-dev libjemalloc-dev \
           libcmocka-dev libxml2-utils clang libclang-rt-14-dev
# The Python and Go child SDKs (standard library only) and their tests.
DEB_PKGS += python3 golang-go
# A real Prometheus server and promtool: the /metrics tests scrape memsup
# with it and check the exposition (skipped, and said, without them).
DEB_PKGS += prometheus
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
SUP_LIBS = -luv -lcjson -lpthread -lm
SDK_LIBS = -lcjson -lpthread
TEST_LIBS = -lcmocka

ifeq ($(V),1)
Q =
else
Q = @
endif

SUP_SRC   := $(filter-out supervisor/main.c,$(wildcard supervisor/*.c))
SDK_SRC   := $(wildcard child-sdk/*.c)
REPORT_SRC := $(wildcard report/*.c)
EX_SRC    := $(wildcard examples/*.c)
UNIT_SRC  := $(wildcard tests/test_*.c)
IT_SRC    := $(wildcard tests/it_*.c)

SUP_OBJ   := $(SUP_SRC:%.c=$(BUILD)/%.o)
SDK_OBJ   := $(SDK_SRC:%.c=$(BUILD)/%.o)
REPORT_OBJ := $(REPORT_SRC:%.c=$(BUILD)/%.o)
EXAMPLES  := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
UNIT_BIN  := $(UNIT_SRC:tests/%.c=$(BUILD)/tests/%)
IT_BIN    := $(IT_SRC:tests/%.c=$(BUILD)/tests/%)

# Examples that exercise jemalloc statistics link it; the others use glibc
# malloc so both SDK code paths run for real.
JEMALLOC_EXAMPLES := kvcache retain profleak memo
ex_libs = $(if $(filter $(1),$(JEMALLOC_EXAMPLES)),-ljemalloc)

.PHONY: conformance
.PHONY: all examples test unit integration check valgrind fuzz fuzz-smoke bench deps \
        install clean demo format
all: $(BUILD)/memsup $(BUILD)/libmemsup.a $(BUILD)/libmemsup.so examples

examples: $(EXAMPLES)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(FINAL_CFLAGS) -c $< -o $@

$(BUILD)/memsup: $(BUILD)/supervisor/main.o $(SUP_OBJ) $(REPORT_OBJ) $(BUILD)/child-sdk/wire.o
	$(if $(Q),@echo "  LINK    $@")
	$(Q)$(CC) $(FINAL_LDFLAGS) -o $@ $^ $(SUP_LIBS)

# The SDK exports only memsup.h's API (MEMSUP_API); wire.c and the rest
# stay internal to libmemsup.so.
$(SDK_OBJ): FINAL_CFLAGS += -fvisibility=hidden

$(BUILD)/libmemsup.a: $(SDK_OBJ)
	$(if $(Q),@echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/libmemsup.so: $(SDK_OBJ)
	$(if $(Q),@echo "  LINK    $@")
	$(Q)$(CC) $(FINAL_LDFLAGS) -shared -Wl,-soname,libmemsup.so.0 -o $@ $^ $(SDK_LIBS)

# Examples are workers, not memsup: they are always built normally (never
# with sanitizers, which would fight jemalloc) into build/examples, with
# EX_CC (the default compiler, also when `make check` builds memsup with
# clang).
EX_CC ?= $(CC)
build/examples/%: examples/%.c build/libmemsup.a
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(EX_CC) $(WARN) -D_FORTIFY_SOURCE=2 -O2 -g -Ichild-sdk/include -o $@ $< \
	  build/libmemsup.a $(call ex_libs,$*) $(SDK_LIBS) -lm

ifneq ($(BUILD),build)
$(BUILD)/examples/%: build/examples/%
	@mkdir -p $(dir $@)
	$(Q)cp $< $@
endif

# Each unit test links only the modules it tests (TEST_OBJS_<name>), so a
# half-edited module elsewhere does not break it; unlisted tests get all.
TEST_OBJS_config  = supervisor/config supervisor/addr supervisor/log
TEST_OBJS_sample  = supervisor/sample supervisor/log supervisor/reaper
TEST_OBJS_policy  = supervisor/policy
TEST_OBJS_wire    = supervisor/channel supervisor/log child-sdk/wire
TEST_OBJS_sdk     = child-sdk/memsup child-sdk/wire supervisor/channel supervisor/log
TEST_OBJS_handoff = supervisor/handoff supervisor/log child-sdk/wire
TEST_OBJS_restartlog = supervisor/restartlog supervisor/log
TEST_OBJS_prof    = supervisor/prof
TEST_OBJS_report  = $(REPORT_SRC:%.c=%) supervisor/log
TEST_OBJS_evidence = supervisor/evidence supervisor/sample supervisor/growth supervisor/cause supervisor/log
TEST_OBJS_growth  = supervisor/growth
TEST_OBJS_machine = supervisor/machine supervisor/policy supervisor/growth supervisor/cause supervisor/evidence supervisor/sample supervisor/log
TEST_OBJS_cause   = supervisor/cause
TEST_OBJS_cgroup  = supervisor/cgroup
TEST_OBJS_offload = supervisor/offload supervisor/handoff supervisor/evidence supervisor/sample supervisor/growth supervisor/log child-sdk/wire
TEST_OBJS_metrics = supervisor/metrics supervisor/addr
TEST_OBJS_notify  = supervisor/notify
TEST_OBJS_listen  = supervisor/listen supervisor/addr supervisor/shim
test_objs = $(if $(TEST_OBJS_$(1)),$(TEST_OBJS_$(1):%=$(BUILD)/%.o),$(SUP_OBJ) $(SDK_OBJ))

.SECONDEXPANSION:
$(BUILD)/tests/test_%: tests/test_%.c $$(call test_objs,$$*)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(FINAL_CFLAGS) $(FINAL_LDFLAGS) -o $@ $(filter %.c %.o,$^) $(SUP_LIBS) $(TEST_LIBS)

$(BUILD)/tests/it_%: tests/it_%.c tests/harness.c $(BUILD)/child-sdk/wire.o
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(FINAL_CFLAGS) $(FINAL_LDFLAGS) -o $@ $(filter %.c %.o,$^) -lcjson $(TEST_LIBS)

# Everything the tests run is built first, on every core (JOBS); then the
# tests run, one rule after the other.  Unit tests first: they are fast and
# pinpoint a broken module before the slower end-to-end runs; last, a smoke
# run of the benchmark harness keeps it from rotting (figures are not
# checked there, only that it runs).
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
.PHONY: test-bins unit-bins integration-bins
unit-bins: $(UNIT_BIN)
integration-bins: $(BUILD)/memsup examples $(IT_BIN)
test-bins: unit-bins integration-bins $(BUILD)/tests/conformance $(CONF_WORKERS)
test:
	$(Q)$(MAKE) --no-print-directory -j$(JOBS) test-bins
	$(Q)$(MAKE) --no-print-directory unit integration conformance man-check
	$(Q)$(MAKE) --no-print-directory bench-smoke

# The man page and the bash completion agree with --help.
.PHONY: man-check
man-check: $(BUILD)/memsup
	$(Q)man/check-help.sh $(BUILD)/memsup
	$(Q)bash completion/check.sh $(BUILD)/memsup

unit: $(UNIT_BIN)
	$(Q)set -e; for t in $(UNIT_BIN); do echo "== $$t"; \
	  MEMSUP_FIXTURES=tests/fixtures $$t; done

# The integration binaries spend most of their time waiting on real
# workers, so they run side by side (IT_JOBS at once), and each runs up to
# IT_TEST_JOBS of its tests at once, each test in a process of its own
# (MEMSUP_IT_JOBS; tests/harness.h).  The slowest binaries (IT_FIRST, by
# their measured wall time) start first, so that none of them starts late
# and runs on alone; the others follow in name order.  Each binary's
# output is kept in a file and shown whole, in order, when all are done.
IT_JOBS ?= 3
IT_TEST_JOBS ?= 2
IT_FIRST = it_sdk it_fds it_decisions it_review it_sdks it_cause it_pool it_core it_prod
IT_ORDER = $(foreach t,$(IT_FIRST),$(filter $(BUILD)/tests/$(t),$(IT_BIN))) \
           $(filter-out $(IT_FIRST:%=$(BUILD)/tests/%),$(IT_BIN))
integration: $(BUILD)/memsup examples $(IT_BIN)
	$(Q)for t in $(IT_ORDER); do echo $$t; done | xargs -P $(IT_JOBS) -I{} sh -c \
	  'MEMSUP_BIN=$(BUILD)/memsup MEMSUP_EXAMPLES=build/examples \
	   MEMSUP_WRAPPER="$(WRAPPER)" MEMSUP_IT_JOBS=$(IT_TEST_JOBS) \
	   {} > {}.log 2>&1; echo $$? > {}.rc'; \
	rc=0; for t in $(IT_BIN); do echo "== $$t"; cat $$t.log; \
	  [ "$$(cat $$t.rc)" = 0 ] || { echo "== $$t FAILED"; rc=1; }; done; \
	exit $$rc

# The sanitizer build uses clang: its UBSan also checks float-to-integer
# conversions that overflow (float-cast-overflow), which gcc's does not do
# as part of -fsanitize=undefined.
SAN_CC ?= clang
SAN_FLAGS = -fsanitize=address,undefined,float-cast-overflow \
            -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_MAKE = $(MAKE) --no-print-directory BUILD=build-san CC=$(SAN_CC) EX_CC=$(CC) \
	  SAN="$(SAN_FLAGS)" FORTIFY= CFLAGS="-O1 -g -DMEMSUP_NO_JEMALLOC"
check:
	$(Q)$(MAKE) --no-print-directory -j$(JOBS) examples
	$(Q)[ "$$(cat build-san/.cc 2>/dev/null)" = "$(SAN_CC)" ] || \
	  { rm -rf build-san && mkdir -p build-san && echo "$(SAN_CC)" >build-san/.cc; }
	$(Q)$(SAN_MAKE) -j$(JOBS) unit-bins integration-bins
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(SAN_MAKE) unit integration
	$(Q)$(MAKE) --no-print-directory fuzz-smoke

VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full \
           --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
           --track-fds=no
valgrind: $(BUILD)/memsup examples $(IT_BIN)
	$(Q)$(MAKE) --no-print-directory integration WRAPPER="$(VALGRIND)" \
	  MEMSUP_SLOW=1 IT_TEST_JOBS=1

# Every tests/fuzz/fuzz_NAME.c is a libFuzzer target.  FUZZ_SRC_NAME lists
# the project sources it links (besides the target file); each target's
# seed corpus is tests/fuzz/corpus/NAME/ (if present).  `make fuzz` runs each
# for FUZZ_SECONDS; `make fuzz-smoke` (part of `make check` when clang's
# libFuzzer runtime is installed) runs each for FUZZ_SMOKE_SECONDS; JOBS
# targets run at once, each single-threaded on a core of its own.
FUZZ_SECONDS ?= 30
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_CC ?= clang
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SRC_wire = child-sdk/wire.c supervisor/channel.c supervisor/log.c
FUZZ_SRC_sdk = child-sdk/wire.c
FUZZ_SRC_cli = supervisor/config.c supervisor/addr.c
FUZZ_SRC_cgroup = supervisor/config.c supervisor/addr.c
FUZZ_SRC_state = supervisor/handoff.c child-sdk/wire.c
FUZZ_SRC_report = $(filter-out report/report.c,$(REPORT_SRC)) supervisor/log.c
FUZZ_SRC_proc = supervisor/sample.c supervisor/reaper.c
FUZZ_SRC_smaps = supervisor/evidence.c supervisor/sample.c supervisor/log.c
FUZZ_LIBS = -lcjson -luv -lpthread -lm
FUZZ_BINS := $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_SRC_$$*)
	@mkdir -p build-fuzz
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined,float-cast-overflow \
	  -fno-sanitize-recover=all -std=c11 -D_GNU_SOURCE -Ichild-sdk/include \
	  -Isupervisor -I. -o $@ $^ $(FUZZ_LIBS)

fuzz:
	$(Q)$(MAKE) --no-print-directory -j$(JOBS) $(FUZZ_BINS)
	$(Q)FUZZ_JOBS=$(JOBS) tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_BINS)

# Skipped (with a word) where clang cannot link a libFuzzer binary.
fuzz-smoke:
	$(Q)if echo 'int LLVMFuzzerTestOneInput(const char*d,unsigned long n){(void)d;(void)n;return 0;}' \
	  | $(FUZZ_CC) -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null; then \
	  $(MAKE) --no-print-directory -j$(JOBS) $(FUZZ_BINS) && \
	  FUZZ_JOBS=$(JOBS) tests/fuzz/run $(FUZZ_SMOKE_SECONDS) $(FUZZ_BINS); \
	else echo "fuzz-smoke: clang's libFuzzer is not installed (make deps installs it); skipped"; fi

# The Python and Go SDKs, and the conformance suite (tests/conformance/):
# one driver playing memsup's side of the protocol against a small worker
# per SDK.  Go builds offline from the standard library only; its caches
# live in build/ so CI as root and a developer never share one.
GO ?= go
GO_ENV = GOCACHE=$(CURDIR)/build/go-cache GOPATH=$(CURDIR)/build/go-path \
         GOPROXY=off GOFLAGS= GOTOOLCHAIN=local GO111MODULE=on
GO_SDK_SRC := $(wildcard child-sdk/go/*.go child-sdk/go/go.mod)
PY_SDK_SRC := $(wildcard child-sdk/python/memsup/*.py)
CONF_WORKERS = build/tests/conf_worker_c build/tests/conf_worker_go
SDK_EXAMPLES = build/examples/gokv
examples: $(SDK_EXAMPLES)

$(BUILD)/tests/conformance: tests/conformance/driver.c $(BUILD)/supervisor/channel.o \
    $(BUILD)/supervisor/log.o $(BUILD)/supervisor/handoff.o $(BUILD)/child-sdk/wire.o
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(FINAL_CFLAGS) $(FINAL_LDFLAGS) -o $@ $^ $(SUP_LIBS) -lm

build/tests/conf_worker_c: tests/conformance/worker_c.c build/libmemsup.a
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(WARN) -O2 -g -Ichild-sdk/include -o $@ $< build/libmemsup.a $(SDK_LIBS) -lm

build/tests/conf_worker_go: tests/conformance/goworker/main.go tests/conformance/goworker/go.mod $(GO_SDK_SRC)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  GO      $@")
	$(Q)cd tests/conformance/goworker && $(GO_ENV) $(GO) build -o $(CURDIR)/$@ .

build/examples/gokv: examples/go/main.go examples/go/go.mod $(GO_SDK_SRC)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  GO      $@")
	$(Q)cd examples/go && $(GO_ENV) $(GO) build -o $(CURDIR)/$@ .

# The SDKs' own tests, then the same conformance cases for each SDK.
conformance: $(BUILD)/tests/conformance $(CONF_WORKERS)
	$(Q)cd child-sdk/go && $(GO_ENV) $(GO) vet ./... && $(GO_ENV) $(GO) test ./...
	$(Q)PYTHONPATH=child-sdk/python python3 -m unittest discover -s child-sdk/python/tests
	$(Q)echo "== conformance: C SDK" && $(BUILD)/tests/conformance -- build/tests/conf_worker_c
	$(Q)echo "== conformance: Python SDK" && PYTHONPATH=child-sdk/python \
	  $(BUILD)/tests/conformance -- python3 tests/conformance/worker.py
	$(Q)echo "== conformance: Python SDK, asyncio (memsup.serve)" && PYTHONPATH=child-sdk/python \
	  CONF_ASYNCIO=1 $(BUILD)/tests/conformance -- python3 tests/conformance/worker.py
	$(Q)echo "== conformance: Go SDK" && $(BUILD)/tests/conformance -- build/tests/conf_worker_go

bench: all
	bash bench/run

bench-smoke: $(BUILD)/memsup examples
	BENCH_SKIP_PEERS=1 bash bench/run --smoke

# A leaking cache service restarted with its state kept, then the review of
# its log.  Ends by itself in about 30 s.
demo: all
	@rm -rf build/demo.jsonl build/demo-samples.jsonl build/demo-state
	$(BUILD)/memsup --limit 48M --log build/demo.jsonl \
	  --sample-log build/demo-samples.jsonl --state-dir build/demo-state \
	  -- build/examples/kvcache --leak-mib-per-s 8 --run-for 25
	$(BUILD)/memsup report --svg build/demo.svg --html build/demo.html build/demo.jsonl \
	  build/demo-samples.jsonl

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	  || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "memsup: installing Debian packages:$$missing"; \
	  echo "+ $(SUDO) apt-get update && $(SUDO) apt-get install -y$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "memsup: all Debian packages present ($(DEB_PKGS))"; fi

install: all
	install -D -m 0755 $(BUILD)/memsup $(DESTDIR)$(PREFIX)/bin/memsup
	install -D -m 0644 $(BUILD)/libmemsup.a $(DESTDIR)$(PREFIX)/lib/libmemsup.a
	install -D -m 0755 $(BUILD)/libmemsup.so $(DESTDIR)$(PREFIX)/lib/libmemsup.so.0
	ln -sf libmemsup.so.0 $(DESTDIR)$(PREFIX)/lib/libmemsup.so
	install -D -m 0644 child-sdk/include/memsup.h $(DESTDIR)$(PREFIX)/include/memsup.h
	@mkdir -p $(DESTDIR)$(PREFIX)/lib/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	  child-sdk/memsup.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/memsup.pc
	install -D -m 0644 man/memsup.1 $(DESTDIR)$(PREFIX)/share/man/man1/memsup.1
	install -D -m 0644 completion/memsup.bash \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions/memsup

format:
	clang-format -i supervisor/*.[ch] report/*.[ch] child-sdk/*.c child-sdk/include/*.h \
	  examples/*.c tests/*.[ch]

clean:
	rm -rf build build-san build-fuzz

-include $(shell find build build-san -name '*.d' 2>/dev/null)
