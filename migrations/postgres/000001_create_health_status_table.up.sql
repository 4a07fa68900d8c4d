-- The health checks an application records: one row per check of one
-- service (dbpoold's example schema; migrations/README.md).
CREATE TABLE IF NOT EXISTS health_status (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service    varchar(100) NOT NULL,
    status     varchar(16) NOT NULL CHECK (status IN ('ok', 'degraded', 'down')),
    message    text,
    checked_at timestamptz NOT NULL DEFAULT now()
);
