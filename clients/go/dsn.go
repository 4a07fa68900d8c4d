// dsn.go — the driver's registration, its configuration (Config) and the DSN
// that spells it: unix:///run/dbpoold/dbpoold.sock?pool=app&client=NAME
// &connect_timeout=10s&timeout=30s&parseTime=true&placeholders=translate.
// A DSN without a socket path takes $DBPOOL_SOCKET, else the default socket;
// without a pool, $DBPOOL_POOL, else "app" (as dbpool and the Python
// client do). Timeouts default to $DBPOOL_CONNECT_TIMEOUT
// (else 10s) and $DBPOOL_TIMEOUT (else none), as in libdbpool.

package dbpool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"
)

// DefaultSocket is the daemon's built-in client socket.
const DefaultSocket = "/run/dbpoold/dbpoold.sock"

// DefaultConnectTimeout bounds connect(2) and the HELLO handshake.
const DefaultConnectTimeout = 10 * time.Second

func init() { sql.Register("dbpool", &Driver{}) }

// Config describes sessions with one pool of dbpoold.
type Config struct {
	Socket         string        // the daemon's client socket
	Pool           string        // the pool named in HELLO
	ClientName     string        // shown in the daemon's /clients and logs
	ConnectTimeout time.Duration // connect + handshake; 0: no limit
	Timeout        time.Duration // each request (also without a context deadline); 0: none
	ParseTime      bool          // TEXT of declared date/time columns scans as time.Time
	// TranslatePlaceholders rewrites ? to $1, $2, ... on PostgreSQL pools
	// when a statement has arguments (true by default from ParseDSN).
	TranslatePlaceholders bool
}

// ParseDSN reads a DSN into a Config, filling the defaults.
func ParseDSN(dsn string) (Config, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return Config{}, fmt.Errorf("dbpool: invalid DSN %q: %v; write unix:///path/to/dbpoold.sock?pool=NAME", dsn, err)
	}
	if u.Scheme != "" && u.Scheme != "unix" {
		return Config{}, fmt.Errorf("dbpool: DSN scheme %q is not supported; write unix:///path/to/dbpoold.sock?pool=NAME", u.Scheme)
	}
	cfg := Config{Socket: u.Path, TranslatePlaceholders: true}
	if u.Opaque != "" { // unix:relative/path.sock
		cfg.Socket = u.Opaque
	}
	q := u.Query()
	cfg.Pool, cfg.ClientName = q.Get("pool"), q.Get("client")
	if err := cfg.fillDefaults(q); err != nil {
		return Config{}, err
	}
	for k := range q {
		switch k {
		case "pool", "client", "connect_timeout", "timeout", "parseTime", "placeholders":
		default:
			return Config{}, fmt.Errorf("dbpool: unknown DSN parameter %q; known: pool, client, connect_timeout, timeout, parseTime, placeholders", k)
		}
	}
	return cfg, nil
}

func (cfg *Config) fillDefaults(q url.Values) error {
	if cfg.Socket == "" {
		cfg.Socket = envOr("DBPOOL_SOCKET", DefaultSocket)
	}
	if cfg.Pool == "" {
		cfg.Pool = envOr("DBPOOL_POOL", "app")
	}
	var err error
	if cfg.ConnectTimeout, err = durationParam(q, "connect_timeout", "DBPOOL_CONNECT_TIMEOUT", DefaultConnectTimeout); err != nil {
		return err
	}
	if cfg.Timeout, err = durationParam(q, "timeout", "DBPOOL_TIMEOUT", 0); err != nil {
		return err
	}
	if v := q.Get("parseTime"); v != "" {
		if cfg.ParseTime, err = strconv.ParseBool(v); err != nil {
			return fmt.Errorf("dbpool: parseTime=%q in the DSN: write true or false", v)
		}
	}
	switch v := q.Get("placeholders"); v {
	case "", "translate":
	case "native":
		cfg.TranslatePlaceholders = false
	default:
		return fmt.Errorf("dbpool: placeholders=%q in the DSN: write translate (? becomes $N on PostgreSQL) or native", v)
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// durationParam: the DSN parameter, else the environment variable, else def.
// Durations are written as in dbpoold.conf: "250ms", "10s", "1m30s", "0".
func durationParam(q url.Values, param, env string, def time.Duration) (time.Duration, error) {
	v, from := q.Get(param), "DSN parameter "+param
	if v == "" {
		v, from = os.Getenv(env), "$"+env
	}
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("dbpool: %s=%q is not a duration; write e.g. 250ms, 10s, 1m30s, or 0 for no limit", from, v)
	}
	return d, nil
}

// Driver is the database/sql driver registered as "dbpool".
type Driver struct{}

// Open opens one session (database/sql calls it through OpenConnector).
func (d *Driver) Open(dsn string) (driver.Conn, error) {
	c, err := d.OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	return c.Connect(context.Background())
}

// OpenConnector parses the DSN once for all the sessions of a sql.DB.
func (d *Driver) OpenConnector(dsn string) (driver.Connector, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	return &Connector{cfg: cfg}, nil
}

// Connector opens sessions for a Config: sql.OpenDB(dbpool.NewConnector(cfg)).
type Connector struct{ cfg Config }

// NewConnector returns a Connector for cfg; an empty Socket means
// $DBPOOL_SOCKET or DefaultSocket, an empty Pool $DBPOOL_POOL or "app".
// Zero timeouts mean no limit (ParseDSN fills the defaults instead).
func NewConnector(cfg Config) *Connector {
	if cfg.Socket == "" {
		cfg.Socket = envOr("DBPOOL_SOCKET", DefaultSocket)
	}
	if cfg.Pool == "" {
		cfg.Pool = envOr("DBPOOL_POOL", "app")
	}
	return &Connector{cfg: cfg}
}

// Connect opens a session: connect to the socket, HELLO, HELLO_OK.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := dial(ctx, c.cfg)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// Driver returns the dbpool driver.
func (c *Connector) Driver() driver.Driver { return &Driver{} }
