-- The queries the application runs most: the latest checks of a service,
-- and users by sign-up date.
CREATE INDEX IF NOT EXISTS health_status_service_checked_at ON health_status (service, checked_at);
CREATE INDEX IF NOT EXISTS users_created_at ON users (created_at);
