/* refuse: new connections are reset as soon as they are accepted, as a closed port would
 * refuse them; open connections are left alone. */
#include "harness/toxic.h"

static int accept_cb(fl_toxic_t *t)
{
    (void)t;
    return 1;
}

const fl_toxic_type_t fl_toxic_refuse = {
    .name = "refuse",
    .doc = "resets new connections at once",
    .accept = accept_cb,
};
