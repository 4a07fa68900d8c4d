/*
 * factory.h — maps a pool's configured type to its backend driver, and
 * lists the configuration each type declares (for the loader).
 */
#ifndef DBPOOLD_FACTORY_H
#define DBPOOLD_FACTORY_H

#include <stddef.h>

#include "backend/backend.h"
#include "daemon/config_spec.h"
#include "daemon/configuration.h"

/* The driver for type, or NULL with a message saying what is supported. */
const struct backend_driver *factory_driver(enum backend_type type, char *errbuf, size_t errlen);
/* The i-th pool type's configuration (i from 0), NULL past the last. */
const struct driver_config_spec *factory_config_spec(size_t i);
/* Whether a driver still tears down a closed connection off the loop
 * (then what it was made with must stay allocated). */
bool factory_teardown_pending(void);
/* Call every built-in driver's quiesce (after the loop stopped). */
void factory_quiesce_all(void);

#endif
