// Package dbpool is the database/sql driver for dbpoold, the connection
// pooling daemon: one driver.Conn is one session over the daemon's Unix
// socket, speaking its framed protocol (doc/protocol.md in the dbpoold
// sources). Import it for its side effect and open the driver "dbpool":
//
//	import _ "dbpool.dev/dbpool"
//
//	db, err := sql.Open("dbpool", "unix:///run/dbpoold/dbpoold.sock?pool=app")
//
// DSN parameters: pool, client, connect_timeout, timeout, parseTime,
// placeholders (see ParseDSN); or sql.OpenDB(NewConnector(Config{...})).
// Write ? placeholders on every backend (rewritten to $N on PostgreSQL
// pools). Errors are *Error (errors.As) with Code, SQLState, VendorCode and
// Message. A context that ends cancels the running statement through the
// protocol's CANCEL. Pin and Unpin keep one server connection for a
// *sql.Conn across transactions.
//
// doc/clients.md in the dbpoold sources covers the type mapping, the
// transaction options, and how to size database/sql's pool when dbpoold
// is the pooler. The driver uses the standard library only.
package dbpool
