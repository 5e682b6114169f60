# mk/sources.mk - which sources make which library; included by Makefile
# and fuzz/Makefile, so the split is written once.
#
# Three libraries, one per side of the build:
#   libmscommon.a   the daemon-independent parts both programs need: util/,
#                   fp/ and the event-record names and reader in log/
#   libmailshaper.a the daemon: every other .c under src/ except src/swarm/
#   libswarm.a      the simulator, src/swarm/; mailshaper-swarm links it and
#                   libmscommon.a only, never libmailshaper.a
# The program entry points (src/main.c, src/swarm/swarm_main.c) are in none.
MAINS     := src/main.c src/swarm/swarm_main.c
ALLSRC    := $(shell find src -name '*.c' | sort)
COMMONSRC := $(sort $(wildcard src/util/*.c src/fp/*.c) \
             $(wildcard src/log/evrec.c src/log/evrec_read.c))
SWARMSRC  := $(filter-out $(MAINS),$(filter src/swarm/%,$(ALLSRC)))
LIBSRC    := $(filter-out $(MAINS) $(COMMONSRC) $(SWARMSRC),$(ALLSRC))
