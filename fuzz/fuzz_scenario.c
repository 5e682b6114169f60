/*
 * fuzz_scenario.c - libFuzzer target for src/swarm/scenario.c
 *
 * Parses the input as a scenario file against the shipped personalities
 * (data/personas.conf, loaded once).  It must not crash, leak or overrun;
 * on failure the error text must be a NUL-terminated string that starts
 * with the file name.  A scenario that parses has its draws and every
 * population's first and last address exercised.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swarm/persona.h"
#include "swarm/scenario.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct persona_set personas;
static int loaded;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	struct scenario *sc;
	char	err[512];
	uint64_t rng;
	unsigned i, k;

	if (!loaded) {
		if (persona_load("data/personas.conf", &personas, err,
		    sizeof(err)) == -1 && persona_load("../../data/personas.conf",
		    &personas, err, sizeof(err)) == -1) {
			fprintf(stderr, "fuzz_scenario: %s\n", err);
			abort();
		}
		loaded = 1;
	}
	memset(err, 'x', sizeof(err));
	sc = scenario_parse_buf("f.scn", (const char *)data, size, &personas,
	    err, sizeof(err));
	if (sc == NULL) {
		if (memchr(err, 0, sizeof(err)) == NULL ||
		    strncmp(err, "f.scn:", 6) != 0)
			abort();
		return 0;
	}
	rng = sc->seed;
	for (i = 0; i < sc->npops; i++) {
		const struct population *p = &sc->pops[i];

		if (scenario_address(sc, p, 0, &ss) != 0 ||
		    scenario_address(sc, p, p->addresses - 1, &ss) != 0 ||
		    scenario_address(sc, p, p->addresses, &ss) != -1)
			abort();
		(void)scenario_is_listed(sc, p, p->addresses - 1);
		for (k = 0; k < 4; k++) {
			(void)scenario_draw_patience(p, &rng);
			(void)scenario_draw_truth(p, &rng);
			(void)scenario_wall_ms(sc, scenario_retry_delay(p, k * 20));
		}
	}
	if (scenario_draw_population(sc, &rng) == NULL)
		abort();
	scenario_free(sc);
	return 0;
}
