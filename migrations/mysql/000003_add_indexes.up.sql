-- The queries the application runs most: the latest checks of a service,
-- and users by sign-up date. MySQL/MariaDB commit each DDL statement by
-- itself: if the second fails, the database is dirty at version 3 (drop
-- what the first made, `force 2`, `up` again).
CREATE INDEX health_status_service_checked_at ON health_status (service, checked_at);
CREATE INDEX users_created_at ON users (created_at);
