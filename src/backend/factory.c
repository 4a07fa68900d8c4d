/*
 * factory.c — the driver factory: one table of the pool types, each with
 * its driver and the configuration its pools take (daemon/config_spec.h).
 * Adding a backend means a folder under src/backend/ with the driver and
 * its *_config.c, and a line here.
 */
#include <stdio.h>

#include "backend/mysql/backend_mysql.h"
#include "backend/mysql/mysql_options.h"
#include "backend/pg/backend_pg.h"
#include "backend/pg/pg_options.h"
#include "backend/sqlite/backend_sqlite.h"
#include "backend/sqlite/sqlite_options.h"
#include "backend/factory.h"

static const struct factory_entry {
    enum backend_type type;
    const struct backend_driver *driver;        /* NULL: refused with a message */
    const struct driver_config_spec *config;
} drivers[] = {
    { BACKEND_SQLITE, &backend_sqlite_driver, &sqlite_config_spec },
    { BACKEND_POSTGRES, &backend_pg_driver, &pg_config_spec },
    { BACKEND_MYSQL, &backend_mysql_driver, &mysql_config_spec },
};

#define NDRIVERS (sizeof(drivers) / sizeof(drivers[0]))

static const struct backend_driver *driver_for(enum backend_type type)
{
    for (size_t i = 0; i < NDRIVERS; i++)
        if (drivers[i].type == type)
            return drivers[i].driver;
    return NULL;
}

const struct backend_driver *factory_driver(enum backend_type type, char *errbuf, size_t errlen)
{
    const struct backend_driver *drv = driver_for(type);

    if (drv)
        return drv;
    snprintf(errbuf, errlen, "pool type \"%s\" is not supported by this build of dbpoold "
             "(supported: sqlite, postgres, mysql)", backend_type_name(type));
    return drv;
}

const char *backend_type_name(enum backend_type t)
{
    for (size_t i = 0; i < NDRIVERS; i++)
        if (drivers[i].type == t)
            return drivers[i].config->name;
    return "unknown";
}

const struct driver_config_spec *factory_config_spec(size_t i)
{
    return i < NDRIVERS ? drivers[i].config : NULL;
}

bool factory_teardown_pending(void)
{
    for (size_t i = 0; i < NDRIVERS; i++)
        if (drivers[i].driver && drivers[i].driver->teardown_pending &&
            drivers[i].driver->teardown_pending())
            return true;
    return false;
}

void factory_quiesce_all(void)
{
    for (size_t i = 0; i < NDRIVERS; i++)
        if (drivers[i].driver && drivers[i].driver->quiesce)
            drivers[i].driver->quiesce();
}
