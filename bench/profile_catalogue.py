#!/usr/bin/env python3
"""Where the time of one catalogue page and one order submission goes, in-process.

    .venv/bin/python bench/profile_catalogue.py            # uses/creates the dinghuo_bench database
    .venv/bin/python bench/profile_catalogue.py -n 300 --only catalogue

Drives the Flask test client (no gunicorn, no network client) against the PostgreSQL bench
database, production-like config, and for each of
  * GET  /api/mp/v1/products?page=N&page_size=20   (20 SKUs at the dealer's price, with stock)
  * POST /api/mp/v1/orders                          (3 lines at MOQ, unique Idempotency-Key)
prints
  1. per request: wall time, Python CPU time (the process), PostgreSQL backend CPU time,
     number of SQL statements and time spent waiting on them;
  2. the SQL one request issues, with each statement's time;
  3. self time by package (SQLAlchemy compile / ORM / engine, psycopg, marshmallow, Flask, ...),
     from cProfile;
  4. the top functions by self time (cProfile) and a pyinstrument call tree (if pyinstrument
     can be imported or pip-installed into ~/.cache/dinghuo-bench/pydeps; otherwise cProfile
     cumulative times).
If the database is missing it runs `bench/run.py --setup-only --keep` first. Only 127.0.0.1.
"""
import argparse
import cProfile
import io
import json
import os
import pstats
import random
import secrets
import subprocess
import sys
import time
from collections import defaultdict

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, ROOT)
sys.path.insert(0, BENCH_DIR)
PYDEPS = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dinghuo-bench", "pydeps")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- setup -------------------------------------------------------------------------------

def ensure_database(dbname, pg_user, pg_port):
    import psycopg

    try:
        with psycopg.connect(f"postgresql://{pg_user}@127.0.0.1:{pg_port}/{dbname}", connect_timeout=5) as conn:
            if conn.execute("SELECT count(*) FROM dealers").fetchone()[0] > 0:
                return
    except Exception:  # noqa: BLE001 - missing database or schema: build it
        pass
    print(f"database {dbname} missing or empty: running bench/run.py --setup-only --keep", flush=True)
    subprocess.run([sys.executable, os.path.join(BENCH_DIR, "run.py"), "--setup-only", "--keep", "--fresh",
                    "--db-name", dbname, "--pg-user", pg_user, "--pg-port", str(pg_port), "--redis-url", ""],
                   check=True, cwd=ROOT, timeout=600)


def configure_env(dbname, pg_user, pg_port, redis_url):
    blackhole = "http://127.0.0.1:9"
    os.environ.update({
        "DATABASE_URL": f"postgresql://{pg_user}@127.0.0.1:{pg_port}/{dbname}",
        "DINGHUO_ENV": "production",
        "SECRET_KEY": "bench-profile-" + secrets.token_hex(24),
        "WECHAT_APP_ID": "wx-bench-appid",
        "WECHAT_APP_SECRET": "bench-app-secret",
        "WECOM_SECRET": "bench-wecom-secret",
        "WECOM_TOKEN": "bench-wecom-token",
        "WECOM_AES_KEY": "b" * 43,
        "WECHAT_API_BASE": blackhole,
        "WECOM_API_BASE": blackhole,
        "WECHATPAY_API_BASE": blackhole,
    })
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    else:
        os.environ.pop("REDIS_URL", None)


def load_pyinstrument(allow_install):
    try:
        import pyinstrument  # noqa: F401

        return True
    except ImportError:
        pass
    if os.path.isdir(PYDEPS):
        sys.path.insert(0, PYDEPS)
        try:
            import pyinstrument  # noqa: F401

            return True
        except ImportError:
            sys.path.remove(PYDEPS)
    if not allow_install:
        return False
    print(f"pyinstrument not installed: pip install --target {PYDEPS} pyinstrument", flush=True)
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", PYDEPS, "pyinstrument"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    if res.returncode != 0:
        return False
    sys.path.insert(0, PYDEPS)
    try:
        import pyinstrument  # noqa: F401

        return True
    except ImportError:
        return False


# --- SQL accounting ------------------------------------------------------------------------

class SqlRecorder:
    """Counts statements and the time between before/after_cursor_execute (driver + PG)."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.reset()
        self.capture = False
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "commit", self._commit_before)

    def reset(self):
        self.count, self.seconds, self.log = 0, 0.0, []

    def _before(self, conn, cursor, statement, params, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn, cursor, statement, params, context, executemany):
        dt = time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        self.count += 1
        self.seconds += dt
        if self.capture:
            self.log.append((dt, " ".join(statement.split())))

    def _commit_before(self, conn):
        # COMMIT goes through the DBAPI directly; count it as a statement too.
        self.count += 1
        if self.capture:
            self.log.append((None, "COMMIT"))


def backend_cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                rest = fh.read().decode("ascii", "replace").rsplit(")", 1)[1].split()
            total += int(rest[11]) + int(rest[12])
        except OSError:
            pass
    return total


# --- the two requests ------------------------------------------------------------------------

class RequestFailed(Exception):
    pass


class Driver:
    def __init__(self, app, actors):
        self.client = app.test_client()
        self.actors = actors
        self.pages = [(a, p) for a in actors for p in range(1, a["full_pages"] + 1)]
        self.i = 0
        self.rng = random.Random(2260)
        self.nonce = "prof" + secrets.token_hex(4)

    def catalogue(self):
        a, page = self.pages[self.i % len(self.pages)]
        self.i += 1
        resp = self.client.get(f"/api/mp/v1/products?page={page}&page_size=20",
                               headers={"Authorization": "Bearer " + a["token"]})
        if resp.status_code != 200 or len(resp.get_json()["items"]) != 20:
            raise RequestFailed(f"catalogue answered {resp.status_code}: {resp.get_data(as_text=True)[:300]}")

    def order(self):
        a = self.actors[self.i % len(self.actors)]
        self.i += 1
        lines = [{"sku_id": s, "qty": q} for s, q in self.rng.sample(a["skus"], 3)]
        resp = self.client.post("/api/mp/v1/orders", json={"lines": lines}, headers={
            "Authorization": "Bearer " + a["token"], "Idempotency-Key": f"{self.nonce}-{self.i}"})
        if resp.status_code != 201:
            raise RequestFailed(f"order answered {resp.status_code}: {resp.get_data(as_text=True)[:300]}")


# --- reporting ---------------------------------------------------------------------------------

BUCKETS = (  # (substring of the code file path, bucket); first match wins
    ("/sqlalchemy/sql/compiler", "SQLAlchemy: SQL compilation"),
    ("/sqlalchemy/sql/", "SQLAlchemy: SQL expression construction"),
    ("/sqlalchemy/orm/", "SQLAlchemy: ORM (session, loading, unit of work)"),
    ("/sqlalchemy/engine/", "SQLAlchemy: engine, execution, result rows"),
    ("/sqlalchemy/pool/", "SQLAlchemy: connection pool"),
    ("/sqlalchemy/", "SQLAlchemy: other"),
    ("/flask_sqlalchemy/", "Flask-SQLAlchemy"),
    ("/psycopg", "psycopg driver (+ waiting for PostgreSQL in wall-time views)"),
    ("/marshmallow/", "marshmallow (load/dump)"),
    ("/flask_smorest/", "flask-smorest / webargs"),
    ("/webargs/", "flask-smorest / webargs"),
    ("/apispec/", "flask-smorest / webargs"),
    ("/werkzeug/", "Werkzeug (routing, request/response, test client)"),
    ("/flask/", "Flask"),
    ("/itsdangerous/", "itsdangerous (token check)"),
    ("/json/", "json encoding"),
    ("/zoneinfo/", "stdlib datetime/zoneinfo"),
    ("/app/", "Dinghuo app/ code"),
    ("/miniprogram_api/", "Dinghuo miniprogram_api/ code"),
    ("/bench/", "bench harness"),
)


def bucket_of(filename, funcname):
    if filename == "~":
        if "socket" in funcname or "select" in funcname or "poll" in funcname or "recv" in funcname or "send" in funcname:
            return "C calls: socket/select (waiting for PostgreSQL)"
        return "C builtins (called from Python)"
    path = filename.replace("\\", "/")
    for needle, name in BUCKETS:
        if needle in path:
            return name
    if "/lib/python3" in path and "site-packages" not in path:
        return "stdlib (other)"
    if path.startswith("<") or "/" not in path:
        return "generated code / builtins"
    return "other: " + os.path.basename(os.path.dirname(path))


def short(filename, lineno, funcname):
    if filename == "~":
        return funcname
    path = filename
    for marker in ("site-packages/", ROOT + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{lineno}({funcname})"


def print_buckets(buckets, total, n, source):
    print(f"  self time by package ({source}; {total / n * 1000:.2f} ms/request while profiled):")
    for name, tt in sorted(buckets.items(), key=lambda kv: -kv[1])[:15]:
        print(f"    {tt / total * 100:5.1f}%  {tt / n * 1000:6.3f} ms/req  {name}")


def pyinstrument_buckets(session):
    """Self (wall) time by package from a pyinstrument session: sampling, so far less
    distorted by call counts than cProfile."""
    buckets = defaultdict(float)

    def walk(frame, inherited):
        path = frame.file_path or ""
        if path.startswith("<sqlalchemy generated"):
            path = "/sqlalchemy/sql/generated"
        elif not path or path.startswith("<"):
            path = inherited  # C builtins, dataclass/attrs code: count them for their caller
        own = frame.time - sum(child.time for child in frame.children)
        if own > 0:
            buckets[bucket_of(path or "?", frame.function or "")] += own
        for child in frame.children:
            walk(child, path)

    root = session.root_frame(trim_stem=False)
    walk(root, None)
    buckets.pop("bench harness", None)
    return buckets, sum(buckets.values())


def report_cprofile(prof, n, top):
    stats = pstats.Stats(prof)
    stats.stats = {k: v for k, v in stats.stats.items() if "/bench/" not in k[0]}
    total = sum(v[2] for v in stats.stats.values())  # tottime
    buckets = defaultdict(float)
    for (filename, lineno, funcname), (cc, nc, tt, ct, callers) in stats.stats.items():
        buckets[bucket_of(filename, funcname)] += tt
    print_buckets(buckets, total, n, "cProfile on CPU time: Python CPU only, profiler overhead inflates "
                  "code that makes many small calls")
    print(f"  top {top} functions by self CPU time (cProfile):")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]
    for (filename, lineno, funcname), (cc, nc, tt, ct, callers) in rows:
        print(f"    {tt / total * 100:5.1f}%  self {tt / n * 1000:6.3f}  cum {ct / n * 1000:6.3f} ms/req  "
              f"{nc / n:6.1f} calls/req  {short(filename, lineno, funcname)}")
    return buckets, total


def report_cumulative(prof, n, top):
    stats = pstats.Stats(prof)
    print(f"  top {top} by cumulative time (cProfile):")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][3])
    shown = 0
    for (filename, lineno, funcname), (cc, nc, tt, ct, callers) in rows:
        if filename == "~" or "/bench/" in filename:
            continue
        print(f"    cum {ct / n * 1000:7.3f} ms/req  {nc / n:6.1f} calls/req  {short(filename, lineno, funcname)}")
        shown += 1
        if shown >= top:
            break


def profile_one(name, fn, args, recorder, backend_pids, have_pyinstrument):
    n = args.requests
    print()
    print("=" * 100)
    print(f"{name}: {n} requests after {args.warmup} warm-up requests")
    print("=" * 100)
    for _ in range(args.warmup):
        fn()

    # 1. plain timing: wall, process CPU, PG backend CPU, SQL count/time
    recorder.reset()
    pg0 = backend_cpu_ticks(backend_pids())
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    pg_cpu = (backend_cpu_ticks(backend_pids()) - pg0) / CLK_TCK
    print(f"  per request: wall {wall / n * 1000:.2f} ms | Python CPU {cpu / n * 1000:.2f} ms | "
          f"PostgreSQL backend CPU {pg_cpu / n * 1000:.2f} ms | {recorder.count / n:.1f} SQL statements "
          f"(incl. COMMIT), {recorder.seconds / n * 1000:.2f} ms inside cursor.execute")
    print(f"  => at 100% of 2 cores this alone caps a 2-core box near {2 / (cpu / n + pg_cpu / n):.0f} req/s "
          f"(Python {cpu / n * 1000:.2f} + PG {pg_cpu / n * 1000:.2f} ms CPU per request, before gunicorn/HTTP)")

    # 2. the SQL of one request
    recorder.reset()
    recorder.capture = True
    fn()
    recorder.capture = False
    print(f"  SQL issued by one request ({len(recorder.log)} statements):")
    for dt, stmt in recorder.log:
        shown = stmt if len(stmt) <= 150 else stmt[:147] + "..."
        label = "" if dt is None else f"{dt * 1000:.2f} ms"
        print(f"    {label:>9s}  {shown}")

    # 3. pyinstrument: self time by package and the call tree (sampling, low distortion)
    out = io.StringIO()
    buckets = None
    if have_pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        for _ in range(n):
            fn()
        profiler.stop()
        buckets, total = pyinstrument_buckets(profiler.last_session)
        print_buckets(buckets, total, n, "pyinstrument samples, wall time")
        flat = profiler.output_text(unicode=True, color=False, flat=True, time="percent_of_total")
        flat_lines = [l for l in flat.splitlines() if "%" in l and "profile_catalogue" not in l][: args.top]
        print(f"  top {len(flat_lines)} functions by self time (pyinstrument, wall):")
        for line in flat_lines:
            print("    " + line.strip())
        text = profiler.output_text(unicode=True, color=False, show_all=False, time="percent_of_total",
                                    processor_options={"filter_threshold": args.tree_threshold})
        print(f"  pyinstrument call tree ({n} requests, nodes under {args.tree_threshold * 100:.0f}% hidden):")
        lines = text.splitlines()
        lines = [l for l in lines if l.strip() and not set(l.strip()) <= set("_.-=")]
        for line in lines[: args.tree_lines]:
            print("    " + line)
        if len(lines) > args.tree_lines:
            print(f"    ... ({len(lines) - args.tree_lines} more lines; --tree-lines to see more)")
        out.write(text)

    # 4. cProfile on the process CPU clock: waiting for PostgreSQL costs nothing here, so this
    #    is where Python CPU goes; exact call counts per request; top functions by self CPU
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    for _ in range(n):
        fn()
    prof.disable()
    cbuckets, _total = report_cprofile(prof, n, args.top)
    if not have_pyinstrument:
        buckets = cbuckets
        report_cumulative(prof, n, args.top)
    return {"wall_ms": wall / n * 1000, "cpu_ms": cpu / n * 1000, "pg_cpu_ms": pg_cpu / n * 1000,
            "sql_per_req": recorder.count, "buckets_ms": {k: v / n * 1000 for k, v in buckets.items()}}, out.getvalue()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--requests", type=int, default=200, help="profiled requests of each kind (default 200)")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--only", choices=("catalogue", "orders"), default=None)
    p.add_argument("--dealers", type=int, default=8)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--tree-threshold", type=float, default=0.02, help="hide pyinstrument nodes below this share")
    p.add_argument("--tree-lines", type=int, default=70)
    p.add_argument("--db-name", default="dinghuo_bench")
    p.add_argument("--pg-user", default="postgres")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    p.add_argument("--no-install", action="store_true", help="do not pip-install pyinstrument; use cProfile only")
    p.add_argument("--save", action="store_true", help="also write the full output to bench/results/")
    args = p.parse_args()
    if args.redis_url and not args.redis_url.startswith(("redis://127.0.0.1", "redis://localhost")):
        p.error("--redis-url must point at 127.0.0.1")

    ensure_database(args.db_name, args.pg_user, args.pg_port)
    configure_env(args.db_name, args.pg_user, args.pg_port, args.redis_url)
    have_pyinstrument = load_pyinstrument(not args.no_install)

    import logging

    from sqlalchemy import text

    from actors import make_actors
    from app import create_app
    from app.extensions import db

    app = create_app()
    logging.getLogger().setLevel(logging.WARNING)
    actors = make_actors(app, args.dealers)
    driver = Driver(app, actors)

    with app.app_context():
        recorder = SqlRecorder(db.engine)
        with db.engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar()

    def backend_pids():
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            return [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (args.db_name,)).fetchall()]

    print(f"profiling against PostgreSQL {version}, database {args.db_name}, "
          f"{'pyinstrument + cProfile' if have_pyinstrument else 'cProfile'}; Python {sys.version.split()[0]}")
    results, trees = {}, {}
    kinds = (("catalogue", "GET /api/mp/v1/products?page=N&page_size=20 (catalogue page)", driver.catalogue),
             ("orders", "POST /api/mp/v1/orders (3 lines)", driver.order))
    failed = False
    for kind, title, fn in kinds:
        if args.only not in (None, kind):
            continue
        try:
            results[kind], trees[kind] = profile_one(title, fn, args, recorder, backend_pids, have_pyinstrument)
        except RequestFailed as exc:
            print(f"\n!! {kind}: {exc}")
            failed = True
    if args.save:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        os.makedirs(os.path.join(BENCH_DIR, "results"), exist_ok=True)
        path = os.path.join(BENCH_DIR, "results", f"profile-{stamp}.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"results": results, "trees": trees}, fh, ensure_ascii=False, indent=1)
        print(f"\nsaved {os.path.relpath(path, ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
