/*
 * factory.c — the driver factory: one table from backend type to driver.
 * Adding a backend means adding its driver here and its keys in src/daemon/config/keys.c.
 */
#include <stdio.h>

#include "backend/mysql/backend_mysql.h"
#include "backend/pg/backend_pg.h"
#include "backend/sqlite/backend_sqlite.h"
#include "backend/factory.h"

static const struct backend_driver *driver_for(enum backend_type type)
{
    switch (type) {
    case BACKEND_SQLITE: return &backend_sqlite_driver;
    case BACKEND_POSTGRES: return &backend_pg_driver;
    case BACKEND_MYSQL: return &backend_mysql_driver;
    }
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

void factory_quiesce_all(void)
{
    static const enum backend_type all[] = { BACKEND_SQLITE, BACKEND_POSTGRES, BACKEND_MYSQL };

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        const struct backend_driver *drv = driver_for(all[i]);
        if (drv && drv->quiesce)
            drv->quiesce();
    }
}
