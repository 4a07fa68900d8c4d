-- The health checks an application records: one row per check of one
-- service (dbpoold's example schema; migrations/README.md).
CREATE TABLE IF NOT EXISTS health_status (
    id         bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
    service    varchar(100) NOT NULL,
    status     varchar(16) NOT NULL,
    message    text,
    checked_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    CONSTRAINT health_status_status CHECK (status IN ('ok', 'degraded', 'down'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
