/* The toxic registry: every fault a link can apply. Adding a toxic is adding a file under
 * harness/toxics/ and a line here. */
#include <string.h>

#include "harness/toxic.h"

extern const fl_toxic_type_t fl_toxic_latency, fl_toxic_bandwidth, fl_toxic_slicer,
    fl_toxic_limit_data, fl_toxic_timeout, fl_toxic_reset_peer, fl_toxic_slow_close,
    fl_toxic_refuse;

const fl_toxic_type_t *const fl_toxic_types[] = {
    &fl_toxic_latency,    &fl_toxic_bandwidth, &fl_toxic_slicer,
    &fl_toxic_limit_data, &fl_toxic_timeout,   &fl_toxic_reset_peer,
    &fl_toxic_slow_close, &fl_toxic_refuse,    NULL,
};

const fl_toxic_type_t *fl_toxic_type_find(const char *name)
{
    for (size_t i = 0; fl_toxic_types[i]; i++)
        if (strcmp(fl_toxic_types[i]->name, name) == 0)
            return fl_toxic_types[i];
    return NULL;
}
