DROP INDEX users_created_at ON users;
DROP INDEX health_status_service_checked_at ON health_status;
