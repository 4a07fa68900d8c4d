DROP TRIGGER IF EXISTS users_touch_updated_at;
DROP TABLE IF EXISTS users;
