-- dbpool:no-transaction
-- CREATE INDEX CONCURRENTLY does not lock the tables against writes, and
-- cannot run inside a transaction: the line above makes dbpool-migrate run
-- this file statement by statement without one (doc/migrations.md). If a
-- statement fails, the database is left dirty at version 3: fix the cause,
-- drop any INVALID index it left, `force 2`, and run `up` again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS health_status_service_checked_at
    ON health_status (service, checked_at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_created_at ON users (created_at);
