-- dbpool:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS users_created_at;
DROP INDEX CONCURRENTLY IF EXISTS health_status_service_checked_at;
