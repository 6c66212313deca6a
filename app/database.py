"""Transactions.

Services own their transactions through `write_transaction()`. On PostgreSQL rows are
locked with `SELECT ... FOR UPDATE`. SQLite ignores FOR UPDATE, so a write transaction
there starts with `BEGIN IMMEDIATE`, taking the database's write lock up front; two
writers can then never read the same stock and both decide it is enough.
"""
import contextlib
from contextvars import ContextVar

from sqlalchemy import event, func
from sqlalchemy.engine import Engine

from app.extensions import db

_write_intent = ContextVar("dinghuo_write_intent", default=False)

# psycopg caches the parsing of a query's %(name)s placeholders (an LRU of 128) only for
# queries up to 4,096 bytes with up to 50 parameters; longer ones are parsed again on every
# execute. The order write (`app.orders.writing`, ~4.1 kB, 52 parameters, the same text on
# every submission) was re-parsed each time: 3 % of a worker's CPU under wrk (bench/README.md,
# "Profile of the submit and the catalogue"). Raise both bounds so fixed statements of that
# size are parsed once per process. Only a cache bound: nothing changes if psycopg renames it.
PSYCOPG_CACHED_STATEMENT_LENGTH = 16384
PSYCOPG_CACHED_STATEMENT_PARAMS = 128


def _widen_psycopg_query_cache():
    try:
        from psycopg import _queries
    except ImportError:  # SQLite only
        return
    if getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", None) is not None:
        _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH, PSYCOPG_CACHED_STATEMENT_LENGTH)
    if getattr(_queries, "MAX_CACHED_STATEMENT_PARAMS", None) is not None:
        _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, PSYCOPG_CACHED_STATEMENT_PARAMS)


_widen_psycopg_query_cache()


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection, _record):
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own
        # transaction handling would defer it and can never say IMMEDIATE).
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL never corrupts the database; only the last commits before a
        # power loss may be lost, and it saves an fsync per commit.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(conn):
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _write_intent.get() else "BEGIN")


@contextlib.contextmanager
def write_transaction():
    """Run the block as one write transaction: commit at the end, roll back on any error.

    On SQLite whatever read transaction the session had is closed first, so the write
    transaction starts with BEGIN IMMEDIATE and takes the write lock before its first read.
    On PostgreSQL (READ COMMITTED) the open transaction simply carries on: every statement
    sees the latest committed rows, and row locks do the rest.
    """
    if _write_intent.get():
        raise RuntimeError("write_transaction() does not nest: the inner commit would end the outer one")
    session = db.session()  # the request's Session behind the scoped proxy
    if session.in_transaction() and session.get_bind().dialect.name == "sqlite":
        session.commit()
    token = _write_intent.set(True)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        _write_intent.reset(token)


def generic_plans_columns(dialect_name):
    """Columns that make PostgreSQL plan the *rest of the transaction's* prepared statements
    once per connection (a generic plan) instead of on every execution; none elsewhere.

    Select them in a transaction's first statement. psycopg prepares a statement after its
    5th execution on a connection; PostgreSQL then compares the generic plan's estimated cost
    with the custom plans' and, for a statement like the submission's lock-and-price (a CTE
    and a dozen subplans over `= ANY($1)`), keeps choosing a custom plan: it planned it on
    every submission, ~1.1 ms of server CPU each, a third of the submission's PostgreSQL CPU
    (pg_stat_statements `plans` == `calls`; bench/README.md, "Round 3"). `set_config(...,
    true)` is transaction-local: the connection goes back to the pool with its default."""
    if dialect_name != "postgresql":
        return ()
    return (func.set_config("plan_cache_mode", "force_generic_plan", True).label("generic_plans"),)


def dialect_insert(session, table):
    """An INSERT that knows ON CONFLICT for the session's database (PostgreSQL or SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


@contextlib.contextmanager
def joined_transaction(session=None):
    """`write_transaction()`, or — when a caller passes its own `session` — that session's
    open transaction, left for the caller to commit or roll back. Lets a batch (an Excel
    import) run many service calls as one all-or-nothing transaction:

        with write_transaction() as session:   # BEGIN IMMEDIATE on SQLite, as for any write
            for row in rows:
                create_sku(staff=staff, session=session, **row)
    """
    if session is not None:
        yield session
        return
    with write_transaction() as own:
        yield own
