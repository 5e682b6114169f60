# mailshaper - GNU make build.  See README.md for the two commands that matter:
#   make demo    mixed sender populations (the swarm) through the daemon
#   make check   unit tests, black-box tests against real peers, then both
#                again under ASan+UBSan
#
# Every target first runs tools/install-deps.sh (order-only, so it never
# forces a rebuild); it installs missing Debian packages and is a no-op
# otherwise.

B        ?= build
SAN      ?=
CC       ?= cc
PKGS     := libevent libevent_openssl libevent_pthreads openssl libpcap sqlite3 hiredis
PKGCFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKGLIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes
CFLAGS   ?= -O2 -g
ALLCFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Isrc $(PKGCFLAGS) -MMD -MP
LDLIBS    = $(PKGLIBS) -lpthread -lm
ifeq ($(SAN),1)
ALLCFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS   += -fsanitize=address,undefined
endif

# The sources of the three libraries (libmscommon.a, libmailshaper.a,
# libswarm.a): mk/sources.mk.
include mk/sources.mk
COMMONOBJ := $(COMMONSRC:%.c=$(B)/obj/%.o)
SWARMOBJ := $(SWARMSRC:%.c=$(B)/obj/%.o)
LIBOBJ   := $(LIBSRC:%.c=$(B)/obj/%.o)
COMMONLIB := $(B)/libmscommon.a
SWARMLIB := $(B)/libswarm.a
DAEMONLIB := $(B)/libmailshaper.a
UNITSRC  := $(sort $(wildcard tests/unit/test_*.c))
UNITBIN  := $(UNITSRC:tests/unit/%.c=$(B)/tests/%)
# A unit test that includes a swarm header tests a swarm module: it links
# libswarm.a and libmscommon.a, never the daemon.  The others link
# libmailshaper.a and libmscommon.a.
SWARMTESTS := $(patsubst tests/unit/%.c,$(B)/tests/%,\
              $(shell grep -l '^\#include "swarm/' $(UNITSRC) /dev/null))
PYTHON   := /usr/bin/python3

.PHONY: all deps check check-unit check-blackbox check-asan demo fuzz bench clean

all: $(B)/mailshaper $(B)/mailshaper-swarm

deps:
	@sh tools/install-deps.sh

$(B)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c -o $@ $<

$(COMMONLIB): $(COMMONOBJ)
	@rm -f $@
	ar rcs $@ $^

$(DAEMONLIB): $(LIBOBJ)
	@rm -f $@
	ar rcs $@ $^

$(SWARMLIB): $(SWARMOBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/mailshaper: $(B)/obj/src/main.o $(DAEMONLIB) $(COMMONLIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/mailshaper-swarm: $(B)/obj/src/swarm/swarm_main.o $(SWARMLIB) $(COMMONLIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(filter-out $(SWARMTESTS),$(UNITBIN)): $(B)/tests/%: tests/unit/%.c \
    $(DAEMONLIB) $(COMMONLIB) | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(DAEMONLIB) $(COMMONLIB) \
	    $(LDLIBS) -lcmocka

$(SWARMTESTS): $(B)/tests/%: tests/unit/%.c $(SWARMLIB) $(COMMONLIB) | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(SWARMLIB) $(COMMONLIB) \
	    $(LDLIBS) -lcmocka

check-unit: $(UNITBIN)
	@set -e; for t in $(UNITBIN); do echo "== $$t"; $$t; done

check-blackbox: $(B)/mailshaper $(B)/mailshaper-swarm
	MAILSHAPER_BUILD=$(abspath $(B)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/blackbox

# The whole suite again with ASan+UBSan in a separate build tree.
check-asan: | deps
	$(MAKE) B=build/asan SAN=1 CFLAGS="-O1 -g" check-unit check-blackbox

check: all | deps
	$(MAKE) check-unit check-blackbox
	$(MAKE) check-asan

demo: all
	sh tools/demo.sh $(B)

fuzz: | deps
	$(MAKE) -f fuzz/Makefile

# Builds the benchmark helpers; each bench/*.sh runs one benchmark
# against its baseline (see bench/README.md).
bench: all
	$(MAKE) -f bench/Makefile B=$(B)
	@echo "run: bench/relay.sh bench/tarpit.sh bench/fp_bench.sh" \
	    "bench/dnsbl_bench.sh bench/rep_bench.sh build/bench/decision_bench"

clean:
	rm -rf build

-include $(LIBOBJ:.o=.d) $(COMMONOBJ:.o=.d) $(SWARMOBJ:.o=.d) \
    $(B)/obj/src/main.d $(B)/obj/src/swarm/swarm_main.d
