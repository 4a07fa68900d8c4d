-- The health checks an application records: one row per check of one
-- service (dbpoold's example schema; migrations/README.md).
CREATE TABLE IF NOT EXISTS health_status (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    service    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('ok', 'degraded', 'down')),
    message    TEXT,
    checked_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
