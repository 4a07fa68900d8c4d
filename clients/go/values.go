// values.go — Go values to protocol values and back: the types the driver
// takes as parameters (driver.NamedValueChecker: int64, float64, bool,
// string, []byte, nil, time.Time; others through database/sql's default
// conversion), time.Time sent as ISO 8601 TEXT, and, with parseTime, TEXT
// of declared date/time columns parsed back into time.Time.

package dbpool

import (
	"database/sql/driver"
	"math"
	"strings"
	"time"
)

// CheckNamedValue accepts the driver's own types as they are.
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	switch nv.Value.(type) {
	case nil, int64, float64, bool, string, []byte, time.Time:
		return nil
	}
	return driver.ErrSkip
}

// Time layouts: what the driver sends (PostgreSQL and SQLite keep the
// offset; MySQL's DATETIME has none, so the time is sent in UTC).
const (
	timeLayoutZone  = "2006-01-02 15:04:05.999999999Z07:00"
	timeLayoutLocal = "2006-01-02 15:04:05.999999"
)

func (c *conn) appendValue(v driver.Value) error {
	e := &c.enc
	switch x := v.(type) {
	case nil:
		e.u8(tagNull)
	case int64:
		e.u8(tagInt64)
		e.u64(uint64(x))
	case float64:
		e.u8(tagFloat64)
		e.u64(math.Float64bits(x))
	case bool:
		e.u8(tagBool)
		if x {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case string:
		e.u8(tagText)
		e.str(x)
	case []byte:
		e.u8(tagBlob)
		e.bytes(x)
	case time.Time:
		e.u8(tagText)
		if c.hello.backend == "mysql" {
			e.str(x.UTC().Format(timeLayoutLocal))
		} else {
			e.str(x.Format(timeLayoutZone))
		}
	default:
		return driverError(CodeUsage, nil, "parameter of type %T: dbpool sends int64, float64, bool, string, []byte, time.Time or nil", v)
	}
	return nil
}

// isTimeType: declared types whose TEXT parseTime turns into time.Time.
func isTimeType(decl string) bool {
	t := strings.ToLower(decl)
	return strings.HasPrefix(t, "timestamp") || strings.HasPrefix(t, "datetime") || t == "date"
}

var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02",
}

// parseTimeText parses a date/time as PostgreSQL, MySQL and SQLite print
// it; a value that is none of these (PostgreSQL's infinity, MySQL's zero
// date) stays a string, so Scan into time.Time reports it.
func parseTimeText(s string) interface{} {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t
		}
	}
	return s
}
