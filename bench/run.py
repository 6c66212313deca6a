#!/usr/bin/env python3
"""Dinghuo load benchmark: catalogue reads and order submissions beside this machine's ceilings.

One command (`bench/run.sh`, which runs this file with the project's venv):

 1. creates a fresh PostgreSQL database (`dinghuo_bench`), runs `flask --app wsgi db upgrade`
    and `flask --app wsgi demo seed` against it, raises stock and credit limits so orders
    never run out, and makes bound dealer users with tokens (bench/actors.py, app code);
 2. serves Dinghuo and a bare Flask app (bench/bare_flask.py) with the same gunicorn settings
    (`-w 2*cores -k sync`, no access log), Dinghuo production-like (DINGHUO_ENV=production,
    PostgreSQL, Redis);
 3. with wrk (32 connections, warm-up, then a fixed duration) measures: the bare Flask
    ceiling, catalogue pages (20 SKUs at the dealer's price with stock), order submissions
    (3 lines) rotating over several dealers, and the same from a single dealer (worst case);
    with pgbench measures the raw SQL order transaction (bench/order_txn.sql), the
    database-side ceiling;
 4. prints requests/s, p50/p99, % of the bare-Flask ceiling and whether each target is met,
    plus CPU per request of the gunicorn processes and of PostgreSQL, and saves everything
    under bench/results/<timestamp>/ (gitignored);
 5. stops its gunicorns and drops the database (unless --keep).

Only 127.0.0.1 is ever contacted. See bench/README.md.
"""
import argparse
import base64
import datetime
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
RESULTS_DIR = os.path.join(BENCH_DIR, "results")
HOST = "127.0.0.1"  # the only host this script ever talks to
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
if not os.path.isdir(VENV_BIN):
    VENV_BIN = os.path.dirname(sys.executable)

TARGETS = {  # scenario: (min share of bare-Flask req/s, max p99 ms)
    "catalogue": (0.40, 50.0),
    "orders": (0.20, 100.0),
    "orders_1dealer": (0.20, 100.0),
}
SCENARIOS = {
    "bare": "bare Flask JSON (ceiling)",
    "catalogue": "catalogue page, 20 SKUs",
    "orders": "order submit, 3 lines, N dealers",
    "orders_1dealer": "order submit, 1 dealer (worst)",
}
SHORT = {"bare": "b", "catalogue": "c", "orders": "o", "orders_1dealer": "o1"}  # Idempotency-Key parts
ALL_PHASES = ("bare", "catalogue", "orders", "orders_1dealer", "pgbench")
STOCK_ON_HAND = 10_000_000
# Tables that grow with orders (everything else holds seeded reference data).
TRANSACTIONAL_TABLES = {"orders", "order_lines", "order_events", "idempotency_keys", "stock_reservations",
                        "credit_entries", "cart_items", "order_no_counters", "dealer_users", "invite_codes"}
CREDIT_LIMIT_FEN = 10**15


# --- output ------------------------------------------------------------------------------

class Log:
    def __init__(self):
        self.fh = None

    def open(self, path):
        self.fh = open(path, "a", encoding="utf-8")

    def __call__(self, msg=""):
        line = f"[bench {datetime.datetime.now():%H:%M:%S}] {msg}" if msg else ""
        print(line, flush=True)
        if self.fh:
            self.fh.write(line + "\n")
            self.fh.flush()


log = Log()


def die(msg):
    log("ERROR: " + msg)
    raise SystemExit(2)


# --- helpers -----------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def local_url(port, path):
    url = f"http://{HOST}:{port}{path}"
    assert url.startswith("http://127.0.0.1:"), url
    return url


def http(port, method, path, headers=None, body=None, timeout=10):
    """(status, headers, parsed JSON or text) from 127.0.0.1 only."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(local_url(port, path), data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        status, hdrs, raw = exc.code, dict(exc.headers), exc.read()
    try:
        return status, hdrs, json.loads(raw)
    except ValueError:
        return status, hdrs, raw.decode("utf-8", "replace")


def run_cmd(cmd, *, env=None, timeout=600, check=True, capture=True):
    res = subprocess.run(cmd, cwd=ROOT, env=env, timeout=timeout, text=True,
                         stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None)
    if check and res.returncode != 0:
        die(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stdout or ''}")
    return res


def find_pgbench():
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    return candidates[-1] if candidates else None


def ensure_wrk(allow_install):
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if not allow_install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    log("wrk not found; installing it with apt-get (package `wrk`) ...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "install", "-y", "-qq", "wrk"], ["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "wrk"]):
        if shutil.which("wrk"):
            break
        subprocess.run(cmd, env=env, timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return shutil.which("wrk")


# --- CPU accounting (read-only /proc sampling) ------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2:].split()
    # rest[0]=state [1]=ppid [2]=pgrp ... [11]=utime [12]=stime
    return int(rest[2]), int(rest[11]) + int(rest[12])


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def machine_busy_ticks():
    with open("/proc/stat") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts) - idle, sum(parts)


class CpuSampler:
    """CPU seconds used in a window by (a) one gunicorn process group, (b) PostgreSQL
    backends connected to the bench database, and (c) the whole machine."""

    def __init__(self, gunicorn_pgid, dbname, interval=0.5):
        self.pgid, self.dbname, self.interval = gunicorn_pgid, dbname, interval
        self.base, self.last = {}, {}
        self._stop = threading.Event()

    def _scan(self):
        snap = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            st = _proc_stat(entry)
            if st is None:
                continue
            pgrp, ticks = st
            if self.pgid and pgrp == self.pgid:
                snap[("app", entry)] = ticks
            else:
                cmd = _cmdline(entry)
                if cmd.startswith("postgres: ") and f" {self.dbname} " in cmd:
                    snap[("pg", entry)] = ticks
        return snap

    def start(self):
        self.base = self._scan()
        self.last = dict(self.base)
        self.machine0 = machine_busy_ticks()
        self.t0 = time.perf_counter()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.last.update(self._scan())

    def stop(self):
        self._stop.set()
        self.thread.join()
        self.last.update(self._scan())
        busy1, total1 = machine_busy_ticks()
        wall = time.perf_counter() - self.t0
        used = {"app": 0, "pg": 0}
        for key, ticks in self.last.items():
            used[key[0]] += ticks - self.base.get(key, 0)
        busy0, total0 = self.machine0
        return {
            "app_cpu_s": used["app"] / CLK_TCK,
            "pg_cpu_s": used["pg"] / CLK_TCK,
            "machine_busy": (busy1 - busy0) / max(total1 - total0, 1),
            "wall_s": wall,
        }


# --- parsing -----------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text.strip())
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def parse_wrk(out):
    res = {"generator": "wrk", "non2xx": 0, "socket_errors": 0}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        res[f"p{pct}_ms"] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["socket_errors"] = sum(int(x) for x in m.groups())
    statuses = {int(k): int(v) for k, v in re.findall(r"^status (\d+): (\d+)$", out, re.M)}
    if statuses:
        res["statuses"] = statuses
    m = re.search(r"^first error: (.*)$", out, re.M)
    if m:
        res["first_error"] = m.group(1)
    return res


def parse_pgbench(out, log_files):
    res = {}
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    res["tps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    res["transactions"] = int(m.group(1)) if m else 0
    m = re.search(r"number of failed transactions: (\d+)", out)
    res["failed"] = int(m.group(1)) if m else 0
    m = re.search(r"latency average = ([\d.]+) ms", out)
    res["avg_ms"] = float(m.group(1)) if m else float("nan")
    lat = []
    for path in log_files:
        with open(path) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    lat.append(int(parts[2]) / 1000.0)
    lat.sort()
    res["p50_ms"] = lat[len(lat) // 2] if lat else float("nan")
    res["p99_ms"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
    return res


# --- the benchmark -----------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.out_dir = os.path.join(RESULTS_DIR, self.stamp)
        os.makedirs(self.out_dir, exist_ok=True)
        log.open(os.path.join(self.out_dir, "run.log"))
        self.dbname = args.db_name
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.dbname):
            die(f"bad database name {self.dbname!r}")
        self.db_url = f"postgresql://{args.pg_user}@{HOST}:{args.pg_port}/{self.dbname}"
        self.servers = {}  # name -> (Popen, port)
        self.nonce = "b" + secrets.token_hex(4)
        self.secret_key = "bench-" + secrets.token_hex(24)
        self.workers = args.workers or 2 * (os.cpu_count() or 1)
        self.env = self._app_env()
        self.rounds = []
        self.order_smoke_failed = False

    # --- environment -----------------------------------------------------------------

    def _app_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "TEST_"))}
        blackhole = f"http://{HOST}:9"  # nothing in these paths calls out; if it did, it stays local
        env.update({
            "DATABASE_URL": self.db_url,
            "DINGHUO_ENV": "production",
            "SECRET_KEY": self.secret_key,
            "WECHAT_APP_ID": "wx-bench-appid",
            "WECHAT_APP_SECRET": "bench-app-secret",
            # Production refuses to start without the WeCom app's secrets; any valid values do.
            "WECOM_SECRET": "bench-wecom-secret",
            "WECOM_TOKEN": "bench-wecom-token",
            "WECOM_AES_KEY": base64.b64encode(b"b" * 32).decode().rstrip("="),
            "WECHAT_API_BASE": blackhole,
            "WECOM_API_BASE": blackhole,
            "WECHATPAY_API_BASE": blackhole,
            "PYTHONUNBUFFERED": "1",
        })
        if self.args.redis_url:
            env["REDIS_URL"] = self.args.redis_url
        else:
            env.pop("REDIS_URL", None)
        return env

    def _pg(self, dbname, autocommit=True):
        import psycopg

        return psycopg.connect(f"postgresql://{self.args.pg_user}@{HOST}:{self.args.pg_port}/{dbname}",
                               autocommit=autocommit, connect_timeout=5)

    def _admin(self):
        for name in (self.args.maintenance_db, "postgres", "test"):
            try:
                return self._pg(name)
            except Exception:  # noqa: BLE001 - try the next maintenance database
                continue
        die("cannot connect to PostgreSQL at 127.0.0.1:%s as %s" % (self.args.pg_port, self.args.pg_user))

    def _redis(self):
        import redis

        from urllib.parse import urlparse

        host = urlparse(self.args.redis_url).hostname
        if host not in ("127.0.0.1", "localhost"):
            die(f"--redis-url must point at 127.0.0.1, not {host}")
        return redis.Redis.from_url(self.args.redis_url, socket_connect_timeout=2)

    # --- database --------------------------------------------------------------------

    def db_exists(self):
        with self._admin() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,)).fetchone() is not None

    def db_seeded(self):
        try:
            with self._pg(self.dbname) as conn:
                return conn.execute("SELECT count(*) FROM dealers").fetchone()[0] > 0
        except Exception:  # noqa: BLE001 - missing database or schema means "not seeded"
            return False

    def drop_db(self):
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')

    def prepare_database(self):
        reuse = self.args.keep and not self.args.fresh and self.db_exists() and self.db_seeded()
        if reuse:
            log(f"reusing database {self.dbname} (--keep; pass --fresh to rebuild it)")
        else:
            log(f"creating database {self.dbname} (drop + create)")
            self.drop_db()
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{self.dbname}"')
            flask = [os.path.join(VENV_BIN, "flask"), "--app", "wsgi"]
            log("flask --app wsgi db upgrade")
            run_cmd(flask + ["db", "upgrade"], env=self.env, timeout=300)
            self.seed(flask)
        log(f"raising stock (on_hand = {STOCK_ON_HAND:,}) and credit limits ({CREDIT_LIMIT_FEN:.0e} fen)")
        with self._pg(self.dbname) as conn:
            conn.execute("UPDATE stock SET on_hand = %s", (STOCK_ON_HAND,))
            conn.execute("UPDATE credit_accounts SET credit_limit_fen = %s", (CREDIT_LIMIT_FEN,))
        self.vacuum_analyze(vacuum=False)

    def seed(self, flask):
        """`flask --app wsgi demo seed`; waits for the command to exist (it may be in progress)."""
        deadline = time.monotonic() + self.args.seed_wait * 60
        while True:
            log("flask --app wsgi demo seed")
            res = run_cmd(flask + ["demo", "seed"], env=self.env, timeout=300, check=False)
            if res.returncode == 0:
                for line in (res.stdout or "").splitlines()[:8]:
                    log("  " + line)
                return
            missing = "No such command" in (res.stdout or "") or "ImportError" in (res.stdout or "") \
                or "ModuleNotFoundError" in (res.stdout or "")
            if not missing or time.monotonic() > deadline:
                die("demo seed failed:\n" + (res.stdout or ""))
            log("  `demo seed` is not available yet; retrying in 30 s")
            time.sleep(30)

    # --- actors and load data ------------------------------------------------------------

    def make_actors(self):
        path = os.path.join(self.out_dir, "actors.json")
        log(f"creating {self.args.dealers} bound dealer users with tokens (bench/actors.py)")
        run_cmd([os.path.join(VENV_BIN, "python"), os.path.join(BENCH_DIR, "actors.py"),
                 "--dealers", str(self.args.dealers), "--out", path], env=self.env, timeout=120)
        with open(path, encoding="utf-8") as fh:
            self.actors = json.load(fh)
        for a in self.actors:
            if len(a["skus"]) < 3:
                die(f"dealer {a['code']} sees fewer than 3 orderable SKUs")
            log(f"  {a['code']} ({a['tier']}): {a['visible']} visible SKUs, {a['full_pages']} full pages, user {a['user_id']}")
        self.single = self.actors[0]["code"]
        data_lua = os.path.join(self.out_dir, "data.lua")
        with open(data_lua, "w", encoding="utf-8") as fh:
            fh.write("return { dealers = {\n")
            for a in self.actors:
                skus = ",".join("{%d,%d}" % (s, q) for s, q in a["skus"])
                fh.write('  {code="%s", token="%s", full_pages=%d, skus={%s}},\n'
                         % (a["code"], a["token"], a["full_pages"], skus))
            fh.write("} }\n")
        self.data_lua = data_lua

    def pgbench_vars(self):
        dids = [a["dealer_id"] for a in self.actors]
        uids = [a["user_id"] for a in self.actors]
        n = len(self.actors)
        if dids != list(range(dids[0], dids[0] + n)) or uids != list(range(uids[0], uids[0] + n)):
            log("  bench dealers/users do not have consecutive ids; pgbench uses the first dealer only")
            dids, uids, n = dids[:1], uids[:1], 1
        with self._pg(self.dbname) as conn:
            smin, smax = conn.execute("SELECT min(id), max(id) FROM skus").fetchone()
            wh = conn.execute("SELECT id FROM warehouses ORDER BY priority, id LIMIT 1").fetchone()[0]
            missing = conn.execute(
                "SELECT count(*) FROM skus s WHERE NOT EXISTS "
                "(SELECT 1 FROM stock WHERE sku_id = s.id AND warehouse_id = %s)", (wh,)).fetchone()[0]
            if missing or smax - smin + 1 != conn.execute("SELECT count(*) FROM skus").fetchone()[0]:
                die("pgbench needs consecutive SKU ids with a stock row in the first warehouse")
        return {"did0": dids[0], "nd": n, "uid0": uids[0], "smin": smin, "smax": smax, "wh": wh}

    # --- servers ------------------------------------------------------------------------

    def start_server(self, name, app_spec, chdir, health_path):
        port = free_port()
        errlog = os.path.join(self.out_dir, f"gunicorn-{name}.log")
        cmd = [os.path.join(VENV_BIN, "gunicorn"), "-w", str(self.workers), "-k", "sync",
               "-b", f"{HOST}:{port}", "--chdir", chdir, "--error-logfile", errlog, "--log-level", "warning"]
        if os.path.isdir("/dev/shm"):
            cmd += ["--worker-tmp-dir", "/dev/shm"]
        cmd.append(app_spec)
        log(f"starting {name}: gunicorn -w {self.workers} -k sync -b {HOST}:{port} {app_spec}")
        out = open(os.path.join(self.out_dir, f"gunicorn-{name}.out"), "ab")  # app logs, tracebacks
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, start_new_session=True,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.servers[name] = (proc, port)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                die(f"gunicorn for {name} exited ({proc.returncode}); see {errlog}")
            try:
                status, _, body = http(port, "GET", health_path, timeout=2)
                if status == 200:
                    return port
            except OSError:
                pass
            time.sleep(0.25)
        die(f"{name} did not answer {health_path} with 200 within 60 s (last: {status} {body})")

    def stop_servers(self):
        for name, (proc, _port) in list(self.servers.items()):
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)  # gunicorn master: graceful stop of its workers
                    proc.wait(timeout=15)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session/group: leftover workers, if any
            except (ProcessLookupError, PermissionError):
                pass
            del self.servers[name]

    # --- smoke checks -------------------------------------------------------------------

    def smoke(self):
        port = self.servers["app"][1]
        a = self.actors[0]
        auth = {"Authorization": "Bearer " + a["token"]}
        status, _, body = http(port, "GET", "/api/mp/v1/products?page=1&page_size=20", headers=auth)
        if status != 200 or len(body.get("items", [])) != 20:
            die(f"catalogue smoke check failed: {status} {body}")
        item = body["items"][0]
        log(f"  smoke: products page 1 -> 200, 20 items, e.g. {item['code']} {item['price_fen']} fen "
            f"({item['price_source']}), stock {item['stock']}")
        status, _, body = http(self.servers["bare"][1], "GET", "/")
        if status != 200:
            die(f"bare Flask smoke check failed: {status} {body}")
        lines = [{"sku_id": s, "qty": q} for s, q in a["skus"][:3]]
        key = f"{self.nonce}-smoke"
        status, _, body = http(port, "POST", "/api/mp/v1/orders", headers={**auth, "Idempotency-Key": key},
                               body={"lines": lines})
        if status != 201:
            log(f"!! order smoke check failed ({status} {body}); see {os.path.relpath(self.out_dir, ROOT)}/"
                f"gunicorn-app.out. Skipping the order phases.")
            return False
        status2, hdrs2, body2 = http(port, "POST", "/api/mp/v1/orders", headers={**auth, "Idempotency-Key": key},
                                     body={"lines": lines})
        replayed = status2 == 201 and body2.get("order_no") == body["order_no"]
        log(f"  smoke: POST /orders -> 201 {body['order_no']} total {body['totals']['total_fen']} fen; "
            f"retry with the same key -> {status2} {'same order' if replayed else 'DIFFERENT ANSWER'}")
        if not replayed:
            log(f"!! the idempotent retry answered {status2} {body2}")
        return True

    # --- load --------------------------------------------------------------------------

    def count_orders(self, settle=False):
        """Orders written by the app; with `settle`, once requests still in flight have finished."""
        with self._pg(self.dbname) as conn:
            def count():
                return conn.execute("SELECT count(*) FROM orders WHERE order_no LIKE 'SO%'").fetchone()[0]

            last, deadline = count(), time.monotonic() + 15
            while settle and time.monotonic() < deadline:
                time.sleep(0.5)
                now = count()
                if now == last:
                    break
                last = now
            return last

    def housekeeping(self):
        """Stand in for autovacuum when the server runs without it (this kind of machine does):
        without it the hot stock/credit rows pile up dead versions and new tables never get
        statistics, which production would not see. Only tables with rows are touched."""
        if not self.autovacuum:
            self.vacuum_analyze(vacuum=True)

    def vacuum_analyze(self, vacuum):
        """(VACUUM and) ANALYZE the seeded reference tables, and the order tables once they
        hold >= 1000 rows. A nearly empty order table is left alone on purpose: statistics
        saying "0 or 1 row" make PostgreSQL plan the foreign-key checks against it as
        sequential scans and keep those plans while the table grows (DESIGN.md, "two traps")."""
        with self._pg(self.dbname) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'alembic_version'").fetchall()]
            for table in tables:
                rows = conn.execute(f'SELECT count(*) FROM (SELECT 1 FROM "{table}" LIMIT 1000) t').fetchone()[0]
                if rows >= 1000 or (rows > 0 and table not in TRANSACTIONAL_TABLES):
                    conn.execute(f'{"VACUUM (ANALYZE)" if vacuum else "ANALYZE"} "{table}"')

    def wait_quiet(self, phase):
        """Busy share of the machine over 1 s while our servers idle; waits (bounded) while
        other work keeps the cores busy, and returns the last figure for the report."""
        deadline = time.monotonic() + self.args.quiet_wait
        while True:
            b0 = machine_busy_ticks()
            time.sleep(1.0)
            b1 = machine_busy_ticks()
            busy = (b1[0] - b0[0]) / max(b1[1] - b0[1], 1)
            if busy <= self.args.max_background or time.monotonic() >= deadline:
                if busy > self.args.max_background:
                    log(f"  (machine still {busy * 100:.0f}% busy with other work before {phase}; measuring anyway)")
                return busy
            time.sleep(1.0)

    def _wrk_cmd(self, scenario, port, seconds, tag):
        a = self.args
        cmd = [self.wrk, "-t", str(a.threads), "-c", str(a.connections), "-d", f"{seconds}s",
               "--latency", "--timeout", "10s"]
        url = local_url(port, "/")
        if scenario == "bare":
            return cmd + [url]
        if scenario == "catalogue":
            return cmd + ["-s", os.path.join(BENCH_DIR, "wrk", "catalogue.lua"), url, "--", self.data_lua]
        only = "all" if scenario == "orders" else self.single
        return cmd + ["-s", os.path.join(BENCH_DIR, "wrk", "orders.lua"), url, "--", self.data_lua, only, tag]

    def load(self, scenario, seconds, tag):
        server = "bare" if scenario == "bare" else "app"
        port = self.servers[server][1]
        if self.wrk:
            cmd = self._wrk_cmd(scenario, port, seconds, tag)
            res = run_cmd(cmd, timeout=seconds + 60, check=False)
            if res.returncode != 0:
                die(f"wrk failed: {' '.join(cmd)}\n{res.stdout}")
            return parse_wrk(res.stdout), res.stdout
        import pyload

        only = "all" if scenario in ("orders", "bare", "catalogue") else self.single
        with open(os.path.join(self.out_dir, "actors.json"), encoding="utf-8") as fh:
            data = {"dealers": json.load(fh)}
        res = pyload.run(port, scenario if not scenario.startswith("orders") else "orders", data=data,
                         only=only, tag=tag, connections=self.args.connections,
                         processes=self.args.threads, duration=seconds)
        return res, json.dumps(res, indent=1)

    def measure(self, scenario, rnd):
        a = self.args
        self.housekeeping()
        background = self.wait_quiet(scenario)
        tag = f"{self.nonce}-{rnd}-{SHORT[scenario]}"
        if a.warmup > 0:
            self.load(scenario, a.warmup, tag + "-w")
        # let the warm-up's in-flight requests finish, so they count neither as orders nor as CPU
        before = self.count_orders(settle=True) if scenario.startswith("orders") else None
        if before is None:
            time.sleep(1.0)
        server = "bare" if scenario == "bare" else "app"
        sampler = CpuSampler(self.servers[server][0].pid, self.dbname)
        sampler.start()
        res, raw = self.load(scenario, a.duration, tag)
        cpu = sampler.stop()
        res.update(cpu)
        n = max(res["requests"], 1)
        res["app_cpu_ms"] = cpu["app_cpu_s"] * 1000 / n
        res["pg_cpu_ms"] = cpu["pg_cpu_s"] * 1000 / n
        res["background_busy"] = background
        if before is not None:
            res["orders_created"] = self.count_orders(settle=True) - before
        with open(os.path.join(self.out_dir, f"round{rnd}-{scenario}.txt"), "w") as fh:
            fh.write(" ".join(self._wrk_cmd(scenario, self.servers[server][1], a.duration, tag)
                              if self.wrk else ["pyload", scenario]) + "\n\n" + raw)
        extra = f", {res['orders_created']} orders written" if before is not None else ""
        if res.get("non2xx") or res.get("socket_errors"):
            log(f"  !! {scenario}: statuses {res.get('statuses')}, first error: {res.get('first_error')}")
        log(f"  {scenario:15s} {res['rps']:8.1f} req/s  p50 {res['p50_ms']:6.1f} ms  p99 {res['p99_ms']:6.1f} ms  "
            f"non-2xx {res['non2xx']}  socket errors {res['socket_errors']}  "
            f"server CPU {res['app_cpu_ms']:.2f} ms/req, PG {res['pg_cpu_ms']:.2f} ms/req, "
            f"machine busy {cpu['machine_busy'] * 100:.0f}% (before: {background * 100:.0f}%){extra}")
        return res

    def pgbench(self, rnd, pgvars):
        a = self.args
        self.housekeeping()
        background = self.wait_quiet("pgbench")
        prefix = os.path.join(self.out_dir, f"round{rnd}-pgbench-log")
        base = [self.pgbench_bin, "-h", HOST, "-p", str(a.pg_port), "-U", a.pg_user, "-n",
                "-c", str(a.pgbench_clients), "-j", str(a.pgbench_jobs), "-M", a.pgbench_protocol, "-f", os.path.join(BENCH_DIR, "order_txn.sql")]
        for k, v in pgvars.items():
            base += ["-D", f"{k}={v}"]
        if a.warmup > 0:
            run_cmd(base + ["-T", str(a.warmup), self.dbname], timeout=a.warmup + 60)
        cmd = base + ["-T", str(a.duration), "-l", "--log-prefix", prefix, self.dbname]
        sampler = CpuSampler(None, self.dbname)
        sampler.start()
        res = run_cmd(cmd, timeout=a.duration + 60, check=False)
        cpu = sampler.stop()
        logs = glob.glob(prefix + "*")
        if res.returncode != 0:
            die(f"pgbench failed: {' '.join(cmd)}\n{res.stdout}")
        out = parse_pgbench(res.stdout, logs)
        for path in logs:
            os.remove(path)
        out.update(cpu)
        out["background_busy"] = background
        out["pg_cpu_ms"] = cpu["pg_cpu_s"] * 1000 / max(out["transactions"], 1)
        with open(os.path.join(self.out_dir, f"round{rnd}-pgbench.txt"), "w") as fh:
            fh.write(" ".join(cmd) + "\n\n" + res.stdout)
        log(f"  {'pgbench':15s} {out['tps']:8.1f} TPS    p50 {out['p50_ms']:6.1f} ms  p99 {out['p99_ms']:6.1f} ms  "
            f"failed {out['failed']}  PG CPU {out['pg_cpu_ms']:.2f} ms/txn, machine busy {cpu['machine_busy'] * 100:.0f}% "
            f"(before: {background * 100:.0f}%)")
        return out

    # --- report ------------------------------------------------------------------------

    @staticmethod
    def _median(rounds, scenario, key):
        vals = [r[scenario][key] for r in rounds if scenario in r and r[scenario].get(key) is not None]
        return statistics.median(vals) if vals else float("nan")

    def summarize(self, context):
        rounds = self.rounds
        med = {}
        for scenario in list(SCENARIOS) + ["pgbench"]:
            if any(scenario in r for r in rounds):
                keys = set().union(*(r[scenario].keys() for r in rounds if scenario in r))
                med[scenario] = {k: self._median(rounds, scenario, k) for k in keys
                                 if all(isinstance(r[scenario].get(k), (int, float)) for r in rounds if scenario in r)}
        bare = med.get("bare", {}).get("rps")
        n = len(rounds)
        head = (f"Dinghuo bench {self.stamp}: {context['cores']} cores, gunicorn -w {self.workers} -k sync, "
                f"{context['generator']} {self.args.connections} connections x {self.args.duration}s "
                f"(+{self.args.warmup}s warm-up), {'median of %d rounds' % n if n > 1 else '1 round'}")
        lines = [head, "=" * len(head),
                 f"{'scenario':34s} {'req/s':>8s} {'p50 ms':>7s} {'p99 ms':>7s} {'% bare':>7s} "
                 f"{'app CPU':>8s} {'PG CPU':>7s}  target                    met?",
                 f"{'':34s} {'':>8s} {'':>7s} {'':>7s} {'':>7s} {'ms/req':>8s} {'ms/req':>7s}", "-" * 118]
        verdicts = {}
        for scenario, label in SCENARIOS.items():
            if scenario not in med:
                continue
            m = med[scenario]
            if scenario.startswith("orders"):
                label = label.replace("N dealers", f"{len(self.actors)} dealers").replace("1 dealer", f"1 dealer {self.single}")
            share = m["rps"] / bare if bare else float("nan")
            target, verdict = "", ""
            if scenario in TARGETS:
                min_share, max_p99 = TARGETS[scenario]
                ok_share, ok_p99 = share >= min_share, m["p99_ms"] < max_p99
                target = f">={min_share * 100:.0f}% & p99<{max_p99:.0f}ms"
                verdict = "YES" if ok_share and ok_p99 else "NO (" + ", ".join(
                    x for x, bad in (("throughput", not ok_share), ("p99", not ok_p99)) if bad) + ")"
                if scenario == "orders_1dealer":
                    verdict += " [worst case, info]"
                verdicts[scenario] = {"share": share, "p99_ms": m["p99_ms"], "met": ok_share and ok_p99}
            errs = m.get("non2xx", 0) + m.get("socket_errors", 0)
            lines.append(f"{label:34s} {m['rps']:8.0f} {m['p50_ms']:7.1f} {m['p99_ms']:7.1f} "
                         f"{share * 100:6.1f}% {m['app_cpu_ms']:8.2f} {m['pg_cpu_ms']:7.2f}  {target:25s} {verdict}"
                         + (f"  !! {errs:.0f} errors" if errs else ""))
        if "pgbench" in med:
            m = med["pgbench"]
            lines.append(f"{'pgbench raw order txn (-c %d -j %d)' % (self.args.pgbench_clients, self.args.pgbench_jobs):34s} "
                         f"{m['tps']:8.0f} {m['p50_ms']:7.1f} {m['p99_ms']:7.1f} {'':>7s} {'':>8s} {m['pg_cpu_ms']:7.2f}  "
                         f"DB ceiling (TPS)" + (f"  !! {m['failed']:.0f} failed" if m.get("failed") else ""))
        lines.append("-" * 118)
        if self.order_smoke_failed:
            lines.append("!! order submission failed its smoke check (see run.log and gunicorn-app.out): not measured")
        if "orders" in med and "pgbench" in med and med["pgbench"]["tps"]:
            lines.append(f"order submissions reach {med['orders']['rps'] / med['pgbench']['tps'] * 100:.1f}% of the "
                         f"pgbench order-transaction ceiling; the app side is the bottleneck when that is far below 100%.")
        lines.append("app CPU = CPU of the gunicorn master+workers per request; PG CPU = CPU of PostgreSQL backends "
                     "serving the bench database per request (sampled from /proc).")
        if "bare" in med:
            # CPU per request moves far less than req/s when other work shares the cores.
            bare_cpu = med["bare"]["app_cpu_ms"] + med["bare"].get("pg_cpu_ms", 0)
            parts = []
            for scenario in TARGETS:
                if scenario in med:
                    cpu = med[scenario]["app_cpu_ms"] + med[scenario]["pg_cpu_ms"]
                    parts.append(f"{scenario} {bare_cpu / cpu * 100:.1f}% ({cpu:.1f} ms vs {bare_cpu:.2f} ms)")
            lines.append("share of bare Flask by server CPU per request (less sensitive to other load than req/s): " + "; ".join(parts))
        busiest = max((r[p].get("background_busy", 0) for r in rounds for p in r), default=0)
        lines.append(f"other work on this machine: {context['background_busy'] * 100:.0f}% busy before the run, "
                     f"up to {busiest * 100:.0f}% just before a phase (it competes for the same cores)")
        if not context.get("autovacuum", True):
            lines.append("autovacuum is off on this server: VACUUM (ANALYZE) ran before each phase instead")
        for scenario in ("orders", "orders_1dealer"):
            m = med.get(scenario)
            # wrk does not count the requests still in flight when it stops (<= connections)
            if m and not (m["requests"] - m.get("non2xx", 0) <= m.get("orders_created", 0)
                          <= m["requests"] + self.args.connections):
                lines.append(f"!! {scenario}: {med[scenario]['orders_created']:.0f} orders written for "
                             f"{med[scenario]['requests']:.0f} requests")
        text = "\n".join(lines)
        summary = {"stamp": self.stamp, "context": context, "median": med, "rounds": rounds, "targets": verdicts,
                   "workers": self.workers, "args": vars(self.args)}
        return text, summary

    # --- main --------------------------------------------------------------------------

    def run(self):
        a = self.args
        phases = [p.strip() for p in a.phases.split(",") if p.strip()]
        for p in phases:
            if p not in ALL_PHASES:
                die(f"unknown phase {p!r}; known: {', '.join(ALL_PHASES)}")
        self.wrk = None if a.python_load else ensure_wrk(not a.no_install)
        if not self.wrk and not a.setup_only:
            log("wrk unavailable: falling back to the Python load generator (bench/pyload.py); "
                "absolute figures will read low")
        self.pgbench_bin = find_pgbench()
        if "pgbench" in phases and not self.pgbench_bin and not a.setup_only:
            log("pgbench not found: skipping the database-side ceiling")
            phases.remove("pgbench")
        log(f"results go to {os.path.relpath(self.out_dir, ROOT)}/")
        b0 = machine_busy_ticks()
        time.sleep(1.0)
        b1 = machine_busy_ticks()
        context = {
            "cores": os.cpu_count(), "background_busy": (b1[0] - b0[0]) / max(b1[1] - b0[1], 1),
            "generator": "wrk" if self.wrk else "python", "loadavg": os.getloadavg(),
            "database": self.dbname, "redis": a.redis_url or None,
        }
        if a.redis_url:
            self._redis().flushdb()  # the bench's own Redis database (default /14), fresh per run
        self.prepare_database()
        with self._pg(self.dbname) as conn:
            self.autovacuum = conn.execute("SHOW autovacuum").fetchone()[0] == "on"
        if not self.autovacuum:
            log("autovacuum is off on this server: the bench runs VACUUM (ANALYZE) on the tables "
                "with rows before each phase instead")
        context["autovacuum"] = self.autovacuum
        self.make_actors()
        if a.setup_only:
            log(f"setup done: database {self.dbname} kept, actors in {os.path.relpath(self.out_dir, ROOT)}/actors.json")
            return 0
        pgvars = self.pgbench_vars() if "pgbench" in phases else None
        self.start_server("app", "wsgi:app", ROOT, "/healthz")
        self.start_server("bare", "bare_flask:app", BENCH_DIR, "/healthz")
        if not self.smoke():
            phases = [p for p in phases if not p.startswith("orders")]
            self.order_smoke_failed = True
        for rnd in range(1, a.runs + 1):
            log(f"round {rnd}/{a.runs}: {a.warmup}s warm-up + {a.duration}s measured per phase")
            result = {}
            for phase in phases:
                if phase == "pgbench":
                    result["pgbench"] = self.pgbench(rnd, pgvars)
                else:
                    result[phase] = self.measure(phase, rnd)
            self.rounds.append(result)
        text, summary = self.summarize(context)
        log("")
        for line in text.splitlines():
            log(line)
        with open(os.path.join(self.out_dir, "summary.txt"), "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        with open(os.path.join(self.out_dir, "summary.json"), "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=1, default=str)
        log(f"saved: {os.path.relpath(self.out_dir, ROOT)}/summary.txt (and raw wrk/pgbench output beside it)")
        return 0

    def cleanup(self):
        self.stop_servers()
        if self.args.keep or self.args.setup_only:
            log(f"keeping database {self.dbname} (--keep)")
        else:
            try:
                self.drop_db()
                log(f"dropped database {self.dbname}")
            except Exception as exc:  # noqa: BLE001 - report, never mask the real outcome
                log(f"could not drop {self.dbname}: {exc}")
        if self.args.redis_url and not self.args.keep:
            try:
                self._redis().flushdb()
            except Exception:  # noqa: BLE001
                pass


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=15, help="measured seconds per phase (default 15)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up seconds before each phase (default 3)")
    p.add_argument("--runs", type=int, default=1, help="rounds of all phases; medians are reported (default 1)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--workers", type=int, default=0, help="gunicorn sync workers (default 2 x cores)")
    p.add_argument("--dealers", type=int, default=8, help="bench dealers to rotate over (default 8)")
    p.add_argument("--phases", default=",".join(ALL_PHASES), help="comma list of " + ",".join(ALL_PHASES))
    p.add_argument("--pgbench-clients", type=int, default=8)
    p.add_argument("--pgbench-jobs", type=int, default=2)
    p.add_argument("--pgbench-protocol", choices=("simple", "extended", "prepared"), default="simple",
                   help="pgbench -M (default simple, pgbench's default; the app's psycopg prepares "
                        "statements it repeats, closer to 'prepared')")
    p.add_argument("--max-background", type=float, default=0.25,
                   help="wait before a phase while other work keeps the machine busier than this (0-1)")
    p.add_argument("--quiet-wait", type=float, default=30,
                   help="seconds to wait at most for --max-background before each phase (default 30)")
    p.add_argument("--db-name", default="dinghuo_bench")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--pg-user", default="postgres")
    p.add_argument("--maintenance-db", default="postgres")
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
                   help="Redis for the app, flushed at start/end (default redis://127.0.0.1:6379/14; '' = none)")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards and reuse it next time")
    p.add_argument("--fresh", action="store_true", help="with --keep: rebuild the database anyway")
    p.add_argument("--setup-only", action="store_true", help="prepare database + actors, keep them, no load")
    p.add_argument("--seed-wait", type=float, default=20, help="minutes to wait for `demo seed` to exist")
    p.add_argument("--python-load", action="store_true", help="use bench/pyload.py even if wrk exists")
    p.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    args = p.parse_args(argv)
    if args.duration <= 0 or args.duration > 600 or args.warmup < 0 or args.warmup > 60 or not 1 <= args.runs <= 10:
        p.error("--duration must be 1..600, --warmup 0..60, --runs 1..10")
    return args


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, BENCH_DIR)
    bench = Bench(args)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    try:
        return bench.run()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        bench.cleanup()


if __name__ == "__main__":
    sys.exit(main())
