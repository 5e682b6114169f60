/*
 * runtime.c - the daemon's process-wide state
 *
 * Exports `ms`, ms_class_index(), ms_class_name() and ms_session_gone().
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "daemon/runtime.h"

struct ms *ms;

static char class_names[CONF_MAX_CLASSES][CONF_NAME_MAX];
static int nclass_names;

/* ms_class_index - stable index of a class name for counters */
int
ms_class_index(const char *name)
{
	int	i;

	for (i = 0; i < nclass_names; i++)
		if (strcmp(class_names[i], name) == 0)
			return i;
	if (nclass_names == CONF_MAX_CLASSES)
		return -1;
	snprintf(class_names[nclass_names], CONF_NAME_MAX, "%s", name);
	return nclass_names++;
}

/* ms_class_name - the class name of a counter slot, or NULL */
const char *
ms_class_name(int idx)
{
	return idx >= 0 && idx < nclass_names ? class_names[idx] : NULL;
}

/* ms_session_gone - a session ended; finish a pending shutdown */
void
ms_session_gone(void)
{
	if (ms->stopping && ms->nsess == 0)
		event_base_loopexit(ms->base, NULL);
}
