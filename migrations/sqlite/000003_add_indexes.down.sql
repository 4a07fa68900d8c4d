DROP INDEX IF EXISTS users_created_at;
DROP INDEX IF EXISTS health_status_service_checked_at;
