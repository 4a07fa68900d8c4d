DROP TABLE IF EXISTS users;
DROP FUNCTION IF EXISTS users_touch_updated_at();
