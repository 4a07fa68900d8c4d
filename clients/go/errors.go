// errors.go — the driver's error type. Every error the daemon reports (an
// ERROR frame) and every failure of the driver itself is an *Error, so a
// caller gets the dbpool code, SQLSTATE and vendor code with errors.As. An
// *Error may wrap a cause (context.Canceled, driver.ErrBadConn, an I/O
// error) that errors.Is sees.

package dbpool

import (
	"database/sql/driver"
	"fmt"
)

// Codes: those below 100 come from the daemon (doc/protocol.md, "Error
// codes"); CodeIO, CodeUsage and CodeTimeout are the driver's own, with the
// same numbers as libdbpool's.
const (
	CodeProtocol    = 1
	CodeVersion     = 2
	CodeUnknownPool = 3
	CodeNotAllowed  = 4
	CodeSQL         = 5
	CodePoolTimeout = 6
	CodeUnavailable = 7
	CodeTxTimeout   = 8
	CodeLimit       = 9
	CodeCanceled    = 10
	CodeConnLost    = 11
	CodeShutdown    = 12
	CodeTxState     = 13
	CodeInternal    = 14
	CodeIO          = 100
	CodeUsage       = 101
	CodeTimeout     = 102
)

var codeNames = map[int]string{
	CodeProtocol: "PROTOCOL", CodeVersion: "VERSION", CodeUnknownPool: "UNKNOWN_POOL",
	CodeNotAllowed: "NOT_ALLOWED", CodeSQL: "SQL", CodePoolTimeout: "POOL_TIMEOUT",
	CodeUnavailable: "UNAVAILABLE", CodeTxTimeout: "TX_TIMEOUT", CodeLimit: "LIMIT",
	CodeCanceled: "CANCELED", CodeConnLost: "CONN_LOST", CodeShutdown: "SHUTDOWN",
	CodeTxState: "TX_STATE", CodeInternal: "INTERNAL", CodeIO: "IO", CodeUsage: "USAGE",
	CodeTimeout: "TIMEOUT",
}

// CodeName returns the stable name of a code ("SQL", "CANCELED", ...).
func CodeName(code int) string {
	if n, ok := codeNames[code]; ok {
		return n
	}
	return fmt.Sprintf("CODE_%d", code)
}

// Error is a failure reported by dbpoold or by the driver.
type Error struct {
	Code       int    // CodeSQL, CodeCanceled, ... (CodeName gives the name)
	SQLState   string // five characters, or "" when the backend has none
	VendorCode int32  // the database's own error number, 0 when none
	Message    string // what happened and what to do
	TxState    byte   // 'I', 'T' or 'E' after the failure (0 for driver errors)
	StmtIndex  int32  // the failing statement of a batch, else -1
	cause      error
}

func (e *Error) Error() string {
	s := "dbpool: " + CodeName(e.Code)
	if e.SQLState != "" {
		s += " " + e.SQLState
	}
	return s + ": " + e.Message
}

// Unwrap gives the cause: context.Canceled / DeadlineExceeded for a
// statement the context ended, driver.ErrBadConn when the request did not
// reach the database (database/sql then retries on another connection).
func (e *Error) Unwrap() error { return e.cause }

// closesSession says whether the daemon closes the session after this
// error (doc/protocol.md, "Errors").
func (e *Error) closesSession() bool {
	switch e.Code {
	case CodeProtocol, CodeVersion, CodeUnknownPool, CodeNotAllowed,
		CodeInternal, CodeTxTimeout, CodeShutdown:
		return true
	case CodeLimit:
		return e.SQLState != "54000" && e.SQLState != "53400"
	}
	return false
}

func driverError(code int, cause error, format string, args ...interface{}) *Error {
	return &Error{Code: code, StmtIndex: -1, Message: fmt.Sprintf(format, args...), cause: cause}
}

// badConn marks a failure before the request left: safe to retry.
func badConn(format string, args ...interface{}) *Error {
	return driverError(CodeIO, driver.ErrBadConn, format, args...)
}
