module dbpool.dev/dbpool

go 1.19
