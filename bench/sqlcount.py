"""gunicorn config for bench/profile_live.py: count SQL statements per request (bench only).

Loaded with `GUNICORN_CMD_ARGS="-c bench/sqlcount.py"` when DINGHUO_BENCH_SQL_COUNT names a
folder; the app never imports it. Each worker listens on SQLAlchemy's Engine class (so the
app's engine too) for cursor executions, counts requests in gunicorn's pre_request hook, and
writes {totals, statements: {sql: [count, seconds]}} to <folder>/sqlcount-<pid>.json on exit.
Statements run on a raw driver cursor (the catalogue's cached-page stock read) are not seen.
"""
import collections
import json
import os
import re
import time

_stats = {"requests": 0, "statements": 0, "execute_s": 0.0}
_by_sql = collections.defaultdict(lambda: [0, 0.0])
_SPACE = re.compile(r"\s+")


def post_worker_init(worker):
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        took = time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        _stats["statements"] += 1
        _stats["execute_s"] += took
        entry = _by_sql[_SPACE.sub(" ", statement)[:400]]
        entry[0] += 1
        entry[1] += took


def pre_request(worker, req):
    _stats["requests"] += 1


def worker_exit(server, worker):
    folder = os.environ.get("DINGHUO_BENCH_SQL_COUNT")
    if not folder:
        return
    with open(os.path.join(folder, f"sqlcount-{os.getpid()}.json"), "w") as fh:
        json.dump({"totals": _stats, "statements": _by_sql}, fh)
