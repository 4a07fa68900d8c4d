"""daemon.py — starts a real dbpoold for the tests ($DBPOOLD_BIN, the
build's daemon) in a temporary directory, with a SQLite pool "app" and, when
the PostgreSQL harness's variables are set (DBPOOL_TEST_PG_HOST/PORT/DB/USER,
as tests/pg/run-pg-tests.sh exports them), a postgres pool "pg", and with
tests/mysql/run-mysql-tests.sh's DBPOOL_TEST_MYSQL_*, a mysql pool "my".

Start-up is awaited by connecting until the daemon answers (deadline 10 s),
never by sleeping. stop() sends SIGTERM and waits; kill() / freeze() / thaw()
are for the tests where the daemon goes away or hangs.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import dbpool

DEADLINE = 10.0


def pg_settings():
    """The harness's PostgreSQL settings, or None when it is not up."""
    env = os.environ
    host = env.get("DBPOOL_TEST_PG_HOST")
    if not host or env.get("DBPOOL_TEST_BACKEND", "postgres") != "postgres":
        return None
    return {"host": host, "port": int(env.get("DBPOOL_TEST_PG_PORT") or 5432),
            "name": env.get("DBPOOL_TEST_PG_DB") or "postgres",
            "username": env.get("DBPOOL_TEST_PG_USER") or "postgres"}


def mysql_settings():
    """The MariaDB harness's settings (tests/mysql/mysql-harness.sh), or None."""
    env = os.environ
    host = env.get("DBPOOL_TEST_MYSQL_HOST")
    if not host or env.get("DBPOOL_TEST_BACKEND") != "mysql":
        return None
    return {"host": host, "name": env.get("DBPOOL_TEST_MYSQL_DB") or "dbpool_test",
            "username": env.get("DBPOOL_TEST_MYSQL_USER") or "dbpool",
            "passwordFile": env.get("DBPOOL_TEST_MYSQL_PASSWORD_FILE") or ""}


def await_condition(cond, what, deadline=DEADLINE):
    """Polls cond() until true; fails the test after the deadline."""
    end = time.monotonic() + deadline
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out after %gs waiting for %s" % (deadline, what))
        time.sleep(0.005)


class Daemon:
    def __init__(self, daemon_settings="", sqlite_settings=""):
        binary = os.environ.get("DBPOOLD_BIN")
        if not binary:
            raise RuntimeError("set DBPOOLD_BIN to the dbpoold binary (tests/python/run.sh does)")
        self.dir = tempfile.mkdtemp(prefix="dbpool-py.")
        self.socket = os.path.join(self.dir, "d.sock")
        self.pg = pg_settings()
        self.my = mysql_settings()
        conf = os.path.join(self.dir, "dbpoold.conf")
        with open(conf, "w") as f:
            f.write(self._config(daemon_settings, sqlite_settings))
        self.log = open(os.path.join(self.dir, "dbpoold.log"), "w")
        self.proc = subprocess.Popen([binary, "-c", conf], stdout=self.log, stderr=self.log)
        self._await_ready()

    def _config(self, daemon_settings, sqlite_settings):
        pools = ['{ name = "app"; type = "sqlite"; sqlite = { filePath = "%s/app.db"; '
                 'maxOpenConns = 3; %s }; }' % (self.dir, sqlite_settings)]
        if self.pg:
            pools.append('{ name = "pg"; type = "postgres"; postgres = { host = "%(host)s"; '
                         'port = %(port)d; name = "%(name)s"; username = "%(username)s"; '
                         'maxOpenConns = 4; }; }' % self.pg)
        if self.my:
            pools.append('{ name = "my"; type = "mysql"; mysql = { host = "%(host)s"; '
                         'name = "%(name)s"; username = "%(username)s"; '
                         'passwordFile = "%(passwordFile)s"; maxOpenConns = 4; }; }' % self.my)
        return ('daemon = { socket = "%s"; statusSocket = "%s/s.sock"; logLevel = "info"; '
                'shutdownTimeout = "5s"; %s };\npools = (\n%s\n);\n'
                % (self.socket, self.dir, daemon_settings, ",\n".join(pools)))

    def _await_ready(self):
        def answers():
            if self.proc.poll() is not None:
                raise AssertionError("dbpoold exited during start-up:\n" + self.log_text())
            try:
                dbpool.connect(pool="app", socket=self.socket, autocommit=True).close()
                return True
            except dbpool.OperationalError:
                return False
        await_condition(answers, "dbpoold to answer on " + self.socket)

    def connect(self, pool="app", **kw):
        return dbpool.connect(pool=pool, socket=self.socket, **kw)

    def log_text(self):
        with open(os.path.join(self.dir, "dbpoold.log")) as f:
            return f.read()

    def freeze(self):
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.thaw()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Backends:
    """Mixin: the test case's pool, with the SQL spelling it needs. Test
    modules define their tests once for "app" (SQLite) and subclass them for
    "pg" when PostgreSQL is up (see backend_variants)."""
    POOL = "app"
    daemon = None           # set by the module's setUpModule

    def connect(self, **kw):
        return self.daemon.connect(self.POOL, **kw)

    @property
    def pg(self):
        return self.POOL == "pg"

    @property
    def my(self):
        return self.POOL == "my"

    @property
    def sqlite(self):
        return self.POOL == "app"

    def table(self, name, columns):
        """(Re)creates a table in autocommit; returns its name."""
        conn = self.connect(autocommit=True)
        cur = conn.cursor()
        cur.execute("DROP TABLE IF EXISTS %s" % name)
        cur.execute("CREATE TABLE %s (%s)" % (name, columns))
        conn.close()
        return name


def backend_variants(cls, namespace):
    """Adds a PostgreSQL and a MySQL variant of the test case when their
    harness is up."""
    for pool, suffix, up in (("pg", "Postgres", pg_settings), ("my", "Mysql", mysql_settings)):
        if up():
            name = cls.__name__ + suffix
            namespace[name] = type(name, (cls,), {"POOL": pool, "__module__": cls.__module__})
    return cls


def serve_module(namespace, **settings):
    """Gives a test module setUpModule / tearDownModule that start one daemon
    for all its tests (namespace["daemon"], and Backends.daemon)."""
    def setUpModule():
        namespace["daemon"] = Backends.daemon = Daemon(**settings)

    def tearDownModule():
        namespace["daemon"].stop()

    namespace["setUpModule"] = setUpModule
    namespace["tearDownModule"] = tearDownModule
