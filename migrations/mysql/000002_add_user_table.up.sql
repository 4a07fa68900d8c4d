-- The application's users; updated_at follows every change by itself.
CREATE TABLE IF NOT EXISTS users (
    id           bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email        varchar(320) NOT NULL,
    display_name varchar(200) NOT NULL DEFAULT '',
    created_at   timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at   timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY users_email_key (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
