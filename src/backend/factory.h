/*
 * factory.h — maps a pool's configured type to its backend driver.
 */
#ifndef DBPOOLD_FACTORY_H
#define DBPOOLD_FACTORY_H

#include <stddef.h>

#include "backend/backend.h"
#include "daemon/configuration.h"

/* The driver for type, or NULL with a message saying what is supported. */
const struct backend_driver *factory_driver(enum backend_type type, char *errbuf, size_t errlen);
/* Call every built-in driver's quiesce (after the loop stopped). */
void factory_quiesce_all(void);

#endif
