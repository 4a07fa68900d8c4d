DROP TABLE IF EXISTS health_status;
