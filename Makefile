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

# Every .c under src/ is part of the library except the program entry points.
MAINS    := src/main.c src/swarm/swarm_main.c
LIBSRC   := $(filter-out $(MAINS),$(shell find src -name '*.c' | sort))
LIBOBJ   := $(LIBSRC:%.c=$(B)/obj/%.o)
UNITSRC  := $(sort $(wildcard tests/unit/test_*.c))
UNITBIN  := $(UNITSRC:tests/unit/%.c=$(B)/tests/%)
PYTHON   := /usr/bin/python3

.PHONY: all deps check check-unit check-blackbox check-asan demo fuzz bench clean

all: $(B)/mailshaper $(B)/mailshaper-swarm

deps:
	@sh tools/install-deps.sh

$(B)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c -o $@ $<

$(B)/libmailshaper.a: $(LIBOBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/mailshaper: $(B)/obj/src/main.o $(B)/libmailshaper.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/mailshaper-swarm: $(B)/obj/src/swarm/swarm_main.o $(B)/libmailshaper.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libmailshaper.a | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(B)/libmailshaper.a $(LDLIBS) -lcmocka

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

-include $(LIBOBJ:.o=.d)
