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

`--against REF` compares two trees in one run: REF checked out into a temporary git worktree
(removed afterwards) and this tree, each with its own database, Redis database and gunicorn,
measured interleaved round by round beside one bare-Flask ceiling, with these bench scripts
for both (bench/treelayout.py finds the app code in either tree's layout). The notification
bench (bench/notify.py, `--phases ...,notify`) runs for both trees too.

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
import tempfile
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
ALL_PHASES = ("bare", "catalogue", "orders", "orders_1dealer", "pgbench", "notify")
DEFAULT_PHASES = "bare,catalogue,orders,orders_1dealer,pgbench"
COMPARE_PHASES = "bare,catalogue,orders,notify"  # the default with --against
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


def run_cmd(cmd, *, env=None, timeout=600, check=True, capture=True, cwd=ROOT):
    res = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, text=True,
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


def git(*args, check=True):
    res = subprocess.run(["git", "-C", ROOT, *args], text=True, timeout=300,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check and res.returncode != 0:
        die(f"git {' '.join(args)} failed: {res.stdout.strip()}")
    return res.stdout.strip()


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

class Tree:
    """One Dinghuo tree under test: its checkout, database, Redis database, server, bench users."""

    def __init__(self, key, label, root, dbname, redis_url):
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", dbname):
            die(f"bad database name {dbname!r}")
        self.key, self.label, self.root, self.dbname, self.redis_url = key, label, root, dbname, redis_url
        self.server = "app" if key == "app" else f"app-{key}"  # its gunicorn in Bench.servers
        self.suffix = "" if key == "app" else f"-{key}"  # in file names
        self.env, self.actors, self.single, self.data_lua = None, None, None, None


class Bench:
    def __init__(self, args):
        self.args = args
        self.stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.out_dir = os.path.join(RESULTS_DIR, self.stamp)
        os.makedirs(self.out_dir, exist_ok=True)
        log.open(os.path.join(self.out_dir, "run.log"))
        self.servers = {}  # name -> (Popen, port)
        self.nonce = "b" + secrets.token_hex(4)
        self.secret_key = "bench-" + secrets.token_hex(24)
        self.workers = args.workers or 2 * (os.cpu_count() or 1)
        self.rounds = []
        self.order_smoke_failed = False
        self.worktree = None  # --against: (temporary directory, worktree path)
        self.trees = [] if args.against else [Tree("app", "this tree", ROOT, args.db_name, args.redis_url)]
        for tree in self.trees:
            tree.env = self._app_env(tree)
        self.dbname = args.db_name  # pgbench's database (single-tree runs)

    @property
    def tree(self):
        """The tree of a single-tree run."""
        return self.trees[0]

    # --- environment -----------------------------------------------------------------

    def _app_env(self, tree):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "TEST_"))}
        env.pop("PYTHONPATH", None)  # the app comes from the tree's own directory, nothing else
        blackhole = f"http://{HOST}:9"  # nothing in these paths calls out; if it did, it stays local
        env.update({
            "DATABASE_URL": f"postgresql://{self.args.pg_user}@{HOST}:{self.args.pg_port}/{tree.dbname}",
            "BENCH_APP_ROOT": tree.root,  # bench/actors.py imports the app from there
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
        if tree.redis_url:
            env["REDIS_URL"] = tree.redis_url
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

    def _redis(self, url):
        import redis

        from urllib.parse import urlparse

        host = urlparse(url).hostname
        if host not in ("127.0.0.1", "localhost"):
            die(f"Redis URLs must point at 127.0.0.1, not {host}")
        return redis.Redis.from_url(url, socket_connect_timeout=2)

    # --- database --------------------------------------------------------------------

    def db_exists(self, dbname):
        with self._admin() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is not None

    def db_seeded(self, dbname):
        try:
            with self._pg(dbname) as conn:
                return conn.execute("SELECT count(*) FROM dealers").fetchone()[0] > 0
        except Exception:  # noqa: BLE001 - missing database or schema means "not seeded"
            return False

    def drop_db(self, dbname):
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    def prepare_database(self, tree):
        """The tree's own migrations and demo seed (run from its directory: `flask --app wsgi`
        finds that tree's wsgi.py, whatever its layout)."""
        name = tree.dbname
        reuse = self.args.keep and not self.args.fresh and self.db_exists(name) and self.db_seeded(name)
        if reuse:
            log(f"reusing database {name} (--keep; pass --fresh to rebuild it)")
        else:
            log(f"creating database {name} (drop + create)")
            self.drop_db(name)
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            flask = [os.path.join(VENV_BIN, "flask"), "--app", "wsgi"]
            log("flask --app wsgi db upgrade" + (f"  ({tree.label})" if self.args.against else ""))
            run_cmd(flask + ["db", "upgrade"], env=tree.env, timeout=300, cwd=tree.root)
            self.seed(tree, flask)
        log(f"raising stock (on_hand = {STOCK_ON_HAND:,}) and credit limits ({CREDIT_LIMIT_FEN:.0e} fen)")
        with self._pg(name) as conn:
            conn.execute("UPDATE stock SET on_hand = %s", (STOCK_ON_HAND,))
            conn.execute("UPDATE credit_accounts SET credit_limit_fen = %s", (CREDIT_LIMIT_FEN,))
        self.vacuum_analyze(tree, vacuum=False)

    def seed(self, tree, flask):
        """`flask --app wsgi demo seed`; waits for the command to exist (it may be in progress)."""
        deadline = time.monotonic() + self.args.seed_wait * 60
        while True:
            log("flask --app wsgi demo seed")
            res = run_cmd(flask + ["demo", "seed"], env=tree.env, timeout=300, check=False, cwd=tree.root)
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

    def make_actors(self, tree):
        path = os.path.join(self.out_dir, f"actors{tree.suffix}.json")
        log(f"creating {self.args.dealers} bound dealer users with tokens (bench/actors.py)")
        run_cmd([os.path.join(VENV_BIN, "python"), os.path.join(BENCH_DIR, "actors.py"),
                 "--dealers", str(self.args.dealers), "--out", path], env=tree.env, timeout=120, cwd=tree.root)
        with open(path, encoding="utf-8") as fh:
            tree.actors = json.load(fh)
        for a in tree.actors:
            if len(a["skus"]) < 3:
                die(f"dealer {a['code']} sees fewer than 3 orderable SKUs")
            log(f"  {a['code']} ({a['tier']}): {a['visible']} visible SKUs, {a['full_pages']} full pages, user {a['user_id']}")
        tree.single = tree.actors[0]["code"]
        data_lua = os.path.join(self.out_dir, f"data{tree.suffix}.lua")
        with open(data_lua, "w", encoding="utf-8") as fh:
            fh.write("return { dealers = {\n")
            for a in tree.actors:
                skus = ",".join("{%d,%d}" % (s, q) for s, q in a["skus"])
                fh.write('  {code="%s", token="%s", full_pages=%d, skus={%s}},\n'
                         % (a["code"], a["token"], a["full_pages"], skus))
            fh.write("} }\n")
        tree.data_lua = data_lua

    def pgbench_vars(self):
        actors = self.tree.actors
        dids = [a["dealer_id"] for a in actors]
        uids = [a["user_id"] for a in actors]
        n = len(actors)
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

    def start_server(self, name, app_spec, chdir, health_path, env):
        port = free_port()
        errlog = os.path.join(self.out_dir, f"gunicorn-{name}.log")
        cmd = [os.path.join(VENV_BIN, "gunicorn"), "-w", str(self.workers), "-k", "sync",
               "-b", f"{HOST}:{port}", "--chdir", chdir, "--error-logfile", errlog, "--log-level", "warning"]
        if os.path.isdir("/dev/shm"):
            cmd += ["--worker-tmp-dir", "/dev/shm"]
        cmd.append(app_spec)
        log(f"starting {name}: gunicorn -w {self.workers} -k sync -b {HOST}:{port} {app_spec}")
        out = open(os.path.join(self.out_dir, f"gunicorn-{name}.out"), "ab")  # app logs, tracebacks
        proc = subprocess.Popen(cmd, cwd=chdir, env=env, start_new_session=True,
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

    def smoke(self, tree):
        port = self.servers[tree.server][1]
        a = tree.actors[0]
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
                f"gunicorn-{tree.server}.out. Skipping the order phases.")
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

    def count_orders(self, tree, settle=False):
        """Orders written by the app; with `settle`, once requests still in flight have finished."""
        with self._pg(tree.dbname) as conn:
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

    def housekeeping(self, tree):
        """Stand in for autovacuum when the server runs without it (this kind of machine does):
        without it the hot stock/credit rows pile up dead versions and new tables never get
        statistics, which production would not see. Only tables with rows are touched."""
        if not self.autovacuum:
            self.vacuum_analyze(tree, vacuum=True)

    def vacuum_analyze(self, tree, vacuum):
        """(VACUUM and) ANALYZE the seeded reference tables, and the order tables once they
        hold >= 1000 rows. A nearly empty order table is left alone on purpose: statistics
        saying "0 or 1 row" make PostgreSQL plan the foreign-key checks against it as
        sequential scans and keep those plans while the table grows (DESIGN.md, "two traps")."""
        with self._pg(tree.dbname) as conn:
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

    def _wrk_cmd(self, scenario, tree, port, seconds, tag):
        a = self.args
        cmd = [self.wrk, "-t", str(a.threads), "-c", str(a.connections), "-d", f"{seconds}s",
               "--latency", "--timeout", "10s"]
        url = local_url(port, "/")
        if scenario == "bare":
            return cmd + [url]
        if scenario == "catalogue":
            return cmd + ["-s", os.path.join(BENCH_DIR, "wrk", "catalogue.lua"), url, "--", tree.data_lua]
        only = "all" if scenario == "orders" else tree.single
        return cmd + ["-s", os.path.join(BENCH_DIR, "wrk", "orders.lua"), url, "--", tree.data_lua, only, tag]

    def load(self, scenario, tree, seconds, tag):
        server = "bare" if scenario == "bare" else tree.server
        port = self.servers[server][1]
        if self.wrk:
            cmd = self._wrk_cmd(scenario, tree, port, seconds, tag)
            res = run_cmd(cmd, timeout=seconds + 60, check=False)
            if res.returncode != 0:
                die(f"wrk failed: {' '.join(cmd)}\n{res.stdout}")
            return parse_wrk(res.stdout), res.stdout
        import pyload

        only = "all" if scenario in ("orders", "bare", "catalogue") else tree.single
        data = {"dealers": tree.actors}
        res = pyload.run(port, scenario if not scenario.startswith("orders") else "orders", data=data,
                         only=only, tag=tag, connections=self.args.connections,
                         processes=self.args.threads, duration=seconds)
        return res, json.dumps(res, indent=1)

    def measure(self, scenario, rnd, tree):
        """One wrk phase against `tree`'s server (the bare-Flask server for "bare")."""
        a = self.args
        self.housekeeping(tree)
        background = self.wait_quiet(scenario + (f" ({tree.label})" if a.against and scenario != "bare" else ""))
        tag = f"{self.nonce}-{rnd}-{SHORT[scenario]}{tree.key if a.against else ''}"
        if a.warmup > 0:
            self.load(scenario, tree, a.warmup, tag + "-w")
        # let the warm-up's in-flight requests finish, so they count neither as orders nor as CPU
        before = self.count_orders(tree, settle=True) if scenario.startswith("orders") else None
        if before is None:
            time.sleep(1.0)
        server = "bare" if scenario == "bare" else tree.server
        sampler = CpuSampler(self.servers[server][0].pid, tree.dbname)
        sampler.start()
        res, raw = self.load(scenario, tree, a.duration, tag)
        cpu = sampler.stop()
        res.update(cpu)
        n = max(res["requests"], 1)
        res["app_cpu_ms"] = cpu["app_cpu_s"] * 1000 / n
        res["pg_cpu_ms"] = cpu["pg_cpu_s"] * 1000 / n
        res["background_busy"] = background
        if before is not None:
            res["orders_created"] = self.count_orders(tree, settle=True) - before
        suffix = tree.suffix if scenario != "bare" else ""
        with open(os.path.join(self.out_dir, f"round{rnd}-{scenario}{suffix}.txt"), "w") as fh:
            fh.write(" ".join(self._wrk_cmd(scenario, tree, self.servers[server][1], a.duration, tag)
                              if self.wrk else ["pyload", scenario]) + "\n\n" + raw)
        extra = f", {res['orders_created']} orders written" if before is not None else ""
        if res.get("non2xx") or res.get("socket_errors"):
            log(f"  !! {scenario}: statuses {res.get('statuses')}, first error: {res.get('first_error')}")
        who = f"{tree.key.upper()} " if a.against and scenario != "bare" else ""
        log(f"  {who}{scenario:15s} {res['rps']:8.1f} req/s  p50 {res['p50_ms']:6.1f} ms  p99 {res['p99_ms']:6.1f} ms  "
            f"non-2xx {res['non2xx']}  socket errors {res['socket_errors']}  "
            f"server CPU {res['app_cpu_ms']:.2f} ms/req, PG {res['pg_cpu_ms']:.2f} ms/req, "
            f"machine busy {cpu['machine_busy'] * 100:.0f}% (before: {background * 100:.0f}%){extra}")
        return res

    def pgbench(self, rnd, pgvars):
        a = self.args
        self.housekeeping(self.tree)
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

    def notify(self, rnd, tree):
        """bench/notify.py (these bench scripts) against `tree`'s app: outbox rows -> RQ -> stand-in.
        Its own PostgreSQL database per tree and its own Redis database (flushed before/after)."""
        a = self.args
        background = self.wait_quiet("notify" + (f" ({tree.label})" if a.against else ""))
        out_dir = os.path.join(self.out_dir, f"round{rnd}-notify{tree.suffix}")
        dbname = a.notify_db + (f"_{tree.key}" if a.against else "")
        cmd = [os.path.join(VENV_BIN, "python"), os.path.join(BENCH_DIR, "notify.py"), "--app-root", tree.root,
               "--rows", str(a.notify_rows), "--workers", str(a.notify_workers), "--classes", a.notify_class,
               "--database", dbname, "--redis-url", a.notify_redis_url, "--results-dir", out_dir,
               "--pg", f"postgresql://{a.pg_user}@{HOST}:{a.pg_port}"]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FLASK_", "TEST_")) and k not in ("PYTHONPATH", "DATABASE_URL", "REDIS_URL")}
        b0 = machine_busy_ticks()
        proc = subprocess.Popen(cmd, cwd=tree.root, env=env, text=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            stdout, _ = proc.communicate(timeout=max(900, a.notify_rows // 10))
        except BaseException:
            # SIGTERM lets notify.py stop its workers and stand-in and drop its database
            proc.terminate()
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            raise
        b1 = machine_busy_ticks()
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "output.txt"), "w", encoding="utf-8") as fh:
            fh.write(" ".join(cmd) + "\n\n" + (stdout or ""))
        try:
            with open(os.path.join(out_dir, "summary.json"), encoding="utf-8") as fh:
                r = json.load(fh)[a.notify_class]
        except (OSError, ValueError, KeyError):
            die(f"notify bench failed for {tree.label} ({proc.returncode}):\n{stdout}")
        noop, drain = r["noop"], r["drain"]
        sent = drain["counts"].get("sent", 0)
        out = {"rps": drain["rate"], "seconds": drain["seconds"], "noop_rps": noop["rate"],
               "share": drain["rate"] / noop["rate"] if noop["rate"] else float("nan"),
               "cpu_ms": drain["cpu_ms_per_delivery"], "rows": drain["rows"], "sent": sent,
               "ok": int(sent == drain["rows"] and drain["exactly_once"]), "background_busy": background,
               "machine_busy": (b1[0] - b0[0]) / max(b1[1] - b0[1], 1)}
        who = f"{tree.key.upper()} " if a.against else ""
        log(f"  {who}{'notify':15s} {out['rps']:8.1f} deliveries/s  drain {out['seconds']:5.1f} s for {out['rows']} rows, "
            f"RQ no-op {out['noop_rps']:.0f} jobs/s, workers' CPU {out['cpu_ms']:.2f} ms/delivery, "
            f"{'all sent, each once' if out['ok'] else '!! NOT all sent exactly once'}, "
            f"machine busy {out['machine_busy'] * 100:.0f}% (before: {background * 100:.0f}%)")
        return out

    # --- comparing two trees -------------------------------------------------------------

    def setup_against(self):
        """Check REF out into a temporary worktree (removed in cleanup) and make both trees."""
        a = self.args
        sha = git("rev-parse", "--verify", "--quiet", a.against + "^{commit}", check=False)
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            die(f"--against {a.against!r}: not a commit in this repository")
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
        for name in ("requirements.txt", "requirements-dev.txt"):
            theirs = git("show", f"{sha}:{name}", check=False)
            try:
                with open(os.path.join(ROOT, name), encoding="utf-8") as fh:
                    ours = fh.read().strip()
            except OSError:
                ours = ""
            if theirs.strip() == ours:
                continue
            diff = subprocess.run(["git", "-C", ROOT, "diff", sha, "--", name], text=True, stdout=subprocess.PIPE,
                                  timeout=60).stdout.strip()
            pins = lambda text: {line.split("#")[0].strip() for line in text.splitlines()} - {""}  # noqa: E731
            if name == "requirements.txt" and pins(theirs) <= pins(ours):
                # The other tree pins a subset of ours, at the same versions: our venv runs its
                # code with the very packages it asks for (the extras it never imports).
                log(f"note: this tree adds runtime requirements to {a.against}'s (same versions for the "
                    "rest), so one venv serves both: " + " ".join(sorted(pins(ours) - pins(theirs))))
                continue
            if name == "requirements.txt":
                die(f"{a.against} has other runtime requirements than this tree: both trees are measured with the "
                    f"same venv ({VENV_BIN}), so the comparison would not be like for like. Difference "
                    f"({a.against} -> this tree):\n{diff}\nCompare with a ref whose requirements.txt matches this tree's.")
            log(f"note: {name} differs from {a.against} (not used by the bench, which needs only requirements.txt): "
                + " ".join(line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")))
        tmp = tempfile.mkdtemp(prefix=f"dinghuo-bench-{sha[:7]}-")
        path = os.path.join(tmp, "tree")
        self.worktree = (tmp, path)
        log(f"checking {a.against} ({sha[:7]}) out into a temporary worktree {path}")
        git("worktree", "add", "--detach", path, sha)
        label_a = a.against if a.against.startswith(sha[:7]) else f"{a.against} {sha[:7]}"
        label_b = f"HEAD {head[:7]}" + (" +uncommitted" if dirty else "")
        self.trees = [Tree("a", label_a, path, f"{a.db_name}_a", a.against_redis_url),
                      Tree("b", label_b, ROOT, f"{a.db_name}_b", a.redis_url)]
        if a.against_redis_url and a.against_redis_url == a.redis_url:
            die("--against-redis-url must differ from --redis-url: each tree gets a Redis database of its own")
        for tree in self.trees:
            tree.env = self._app_env(tree)
        return {"against": a.against, "a": {"label": label_a, "commit": sha, "root": path},
                "b": {"label": label_b, "commit": head, "dirty": bool(dirty), "root": ROOT}}

    def remove_worktree(self):
        if not self.worktree:
            return
        tmp, path = self.worktree
        self.worktree = None
        if os.path.isdir(path):
            git("worktree", "remove", "--force", path, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        git("worktree", "prune", check=False)
        log(f"removed the temporary worktree {path}")

    def summarize_compare(self, context, phases):
        """One table: per scenario and tree, median throughput over the rounds, its min-max, the
        share of the same round's ceiling, p50/p99, and B against A round by round."""
        a, rounds = self.args, self.rounds
        A, B = self.trees
        n = len(rounds)

        def vals(key, field):
            return [r[key][field] for r in rounds if key in r and isinstance(r[key].get(field), (int, float))]

        def med(xs):
            return statistics.median(xs) if xs else float("nan")

        def rng(xs, fmt="{:.0f}"):
            return (fmt.format(min(xs)) + "-" + fmt.format(max(xs))) if xs else "-"

        head = (f"Dinghuo bench {self.stamp}: A = {A.label} vs B = {B.label}; {context['cores']} cores, "
                f"gunicorn -w {self.workers} -k sync, {context['generator']} {a.connections} connections x "
                f"{a.duration}s (+{a.warmup}s warm-up); {n} round{'s' if n > 1 else ''}, A/B interleaved"
                f"{' (A,B then B,A)' if n > 1 else ''}; medians, [min-max] over rounds")
        cols = (f"{'scenario':34s} {'tree':3s} {'req/s':>7s} {'[min-max]':>11s} {'% ceil':>7s} {'p50 ms':>7s} "
                f"{'p99 ms':>7s} {'p99 [min-max]':>13s} {'CPU ms':>7s}  B vs A (median; per round)")
        lines = [head, "=" * min(len(head), 140), cols, "-" * 140]
        verdicts = {}
        order = [p for p in ("bare", "catalogue", "orders", "orders_1dealer", "notify") if p in phases]
        for scenario in order:
            if scenario == "bare":
                rps, p50, p99 = vals("bare", "rps"), vals("bare", "p50_ms"), vals("bare", "p99_ms")
                lines.append(f"{SCENARIOS['bare']:34s} {'-':3s} {med(rps):7.0f} {rng(rps):>11s} {100.0:6.1f}% "
                             f"{med(p50):7.1f} {med(p99):7.1f} {rng(p99, '{:.1f}'):>13s} "
                             f"{med(vals('bare', 'app_cpu_ms')):7.2f}")
                continue
            if scenario == "notify":
                label = f"notification delivery, {a.notify_rows} rows"
            else:
                label = SCENARIOS[scenario].replace("N dealers", f"{len(B.actors)} dealers").replace(
                    "1 dealer", f"1 dealer {B.single}")
            per_tree = {}
            for tree in (A, B):
                key = f"{scenario}:{tree.key}"
                rps = vals(key, "rps")
                if scenario == "notify":
                    shares = vals(key, "share")
                    p50 = p99 = []
                    cpu = vals(key, "cpu_ms")
                else:
                    bare = {i: r["bare"]["rps"] for i, r in enumerate(rounds) if "bare" in r}
                    shares = [r[key]["rps"] / bare[i] for i, r in enumerate(rounds) if key in r and bare.get(i)]
                    p50, p99 = vals(key, "p50_ms"), vals(key, "p99_ms")
                    cpu = [x + y for x, y in zip(vals(key, "app_cpu_ms"), vals(key, "pg_cpu_ms"))]
                per_tree[tree.key] = rps
                errs = sum(vals(key, "non2xx")) + sum(vals(key, "socket_errors"))
                notes = ""
                if scenario == "notify":
                    drains = vals(key, "seconds")
                    bad = n - sum(vals(key, "ok"))
                    notes = f"drain {med(drains):.1f} s [{rng(drains, '{:.1f}')}]" + (
                        f"  !! {bad} round(s) not all sent exactly once" if bad else ", all sent once")
                elif errs:
                    notes = f"!! {errs:.0f} errors"
                cell = (f"{label if tree is A else '':34s} {tree.key.upper():3s} {med(rps):7.0f} {rng(rps):>11s} "
                        f"{med(shares) * 100:6.1f}% "
                        + (f"{med(p50):7.1f} {med(p99):7.1f} {rng(p99, '{:.1f}'):>13s} " if p50 else
                           f"{'-':>7s} {'-':>7s} {'-':>13s} ")
                        + f"{med(cpu):7.2f}  ")
                if tree is B:
                    ra, rb = per_tree["a"], per_tree["b"]
                    ratios = [r[f"{scenario}:b"]["rps"] / r[f"{scenario}:a"]["rps"] for r in rounds
                              if f"{scenario}:a" in r and f"{scenario}:b" in r and r[f"{scenario}:a"]["rps"]]
                    delta = med(rb) / med(ra) - 1 if ra and rb and med(ra) else float("nan")
                    if not ra or not rb:
                        verdict = "not measured"
                    elif n < 2:
                        verdict = "1 round: no spread to judge by (use --runs 3)"
                    elif delta >= 0:
                        verdict = "no slower"
                    elif max(rb) >= min(ra):
                        verdict = "within noise (ranges overlap)"
                    else:
                        verdict = "SLOWER (every B round below every A round)"
                    verdicts[scenario] = {"delta": delta, "ratios": ratios, "verdict": verdict}
                    cell += (f"{delta * 100:+.1f}%; B/A {rng(ratios, '{:.2f}')}  {verdict}" if ratios else verdict)
                lines.append(cell + (("  " + notes) if notes else ""))
        lines.append("-" * 140)
        if self.order_smoke_failed:
            lines.append("!! order submission failed its smoke check for a tree (see run.log): order phases not measured")
        lines += [
            "req/s: wrk requests/s (notify: deliveries/s); [min-max]: over the rounds, the noise you measured;",
            "% ceil: share of the same round's bare-Flask req/s (notify: of RQ's no-op jobs/s in the same notify run);",
            "CPU ms: server CPU per request, gunicorn + PostgreSQL (notify: the RQ workers' per delivery);",
            "B vs A: median B over median A - 1, and B/A round by round (the interleaving puts both trees under the same drift).",
        ]
        busiest = max((r[p].get("background_busy", 0) for r in rounds for p in r), default=0)
        lines.append(f"other work on this machine: {context['background_busy'] * 100:.0f}% busy before the run, "
                     f"up to {busiest * 100:.0f}% just before a phase (it competes for the same cores)")
        for tree in (A, B):
            for scenario in ("orders", "orders_1dealer"):
                for i, r in enumerate(rounds):
                    m = r.get(f"{scenario}:{tree.key}")
                    if m and not (m["requests"] - m.get("non2xx", 0) <= m.get("orders_created", 0)
                                  <= m["requests"] + a.connections):
                        lines.append(f"!! {tree.key.upper()} {scenario} round {i + 1}: {m['orders_created']} orders "
                                     f"written for {m['requests']} requests")
        text = "\n".join(lines)
        summary = {"stamp": self.stamp, "context": context, "rounds": rounds, "compare": verdicts,
                   "workers": self.workers, "args": vars(a)}
        return text, summary

    # --- report ------------------------------------------------------------------------

    @staticmethod
    def _median(rounds, scenario, key):
        vals = [r[scenario][key] for r in rounds if scenario in r and r[scenario].get(key) is not None]
        return statistics.median(vals) if vals else float("nan")

    def summarize(self, context):
        rounds = self.rounds
        med = {}
        for scenario in list(SCENARIOS) + ["pgbench", "notify"]:
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
                label = label.replace("N dealers", f"{len(self.tree.actors)} dealers").replace("1 dealer", f"1 dealer {self.tree.single}")
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
        if "notify" in med:
            m = med["notify"]
            lines.append(f"{'notification delivery, %d rows' % self.args.notify_rows:34s} {m['rps']:8.0f} "
                         f"{'-':>7s} {'-':>7s} {m['share'] * 100:6.1f}% {m['cpu_ms']:8.2f} {'':>7s}  "
                         f"{'all once, drain <= 60s':25s} "
                         f"{'YES' if m['ok'] and m['seconds'] <= 60 else 'NO'} (drain {m['seconds']:.1f} s; "
                         f"% = of RQ no-op jobs/s; CPU = workers' per delivery)")
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
        phases = [p.strip() for p in (a.phases or (COMPARE_PHASES if a.against else DEFAULT_PHASES)).split(",")
                  if p.strip()]
        for p in phases:
            if p not in ALL_PHASES:
                die(f"unknown phase {p!r}; known: {', '.join(ALL_PHASES)}")
        if a.against and "pgbench" in phases:
            die("the pgbench phase measures raw SQL, not a tree's app: leave it out with --against "
                "(run it without --against)")
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
            "database": self.dbname, "redis": a.redis_url or None, "phases": phases,
        }
        if a.against:
            context["compare"] = self.setup_against()
            context["database"] = [t.dbname for t in self.trees]
            context["redis"] = [t.redis_url for t in self.trees]
        for tree in self.trees:
            if tree.redis_url:
                self._redis(tree.redis_url).flushdb()  # the tree's own Redis database, fresh per run
        for tree in self.trees:
            if a.against:
                log(f"tree {tree.key.upper()}: {tree.label} ({tree.root}), database {tree.dbname}, "
                    f"Redis {tree.redis_url or 'none'}")
            self.prepare_database(tree)
        with self._pg(self.trees[0].dbname) as conn:
            self.autovacuum = conn.execute("SHOW autovacuum").fetchone()[0] == "on"
        if not self.autovacuum:
            log("autovacuum is off on this server: the bench runs VACUUM (ANALYZE) on the tables "
                "with rows before each phase instead")
        context["autovacuum"] = self.autovacuum
        for tree in self.trees:
            self.make_actors(tree)
        if a.setup_only:
            log(f"setup done: database {self.dbname} kept, actors in {os.path.relpath(self.out_dir, ROOT)}/actors.json")
            return 0
        pgvars = self.pgbench_vars() if "pgbench" in phases else None
        for tree in self.trees:
            self.start_server(tree.server, "wsgi:app", tree.root, "/healthz", tree.env)
        self.start_server("bare", "bare_flask:app", BENCH_DIR, "/healthz", self.trees[-1].env)
        smoke_ok = [self.smoke(tree) for tree in self.trees]
        if not all(smoke_ok):
            phases = [p for p in phases if not p.startswith("orders")]
            self.order_smoke_failed = True
        for rnd in range(1, a.runs + 1):
            # A,B on odd rounds, B,A on even ones: drift and "who goes first" hit both trees alike
            order = self.trees if rnd % 2 else self.trees[::-1]
            log(f"round {rnd}/{a.runs}: {a.warmup}s warm-up + {a.duration}s measured per phase"
                + (f"; order {', '.join(t.key.upper() for t in order)}" if a.against else ""))
            result = {}
            for phase in phases:
                if phase == "pgbench":
                    result["pgbench"] = self.pgbench(rnd, pgvars)
                elif phase == "bare":
                    result["bare"] = self.measure("bare", rnd, self.trees[-1])
                elif not a.against:
                    result[phase] = self.notify(rnd, self.tree) if phase == "notify" else self.measure(phase, rnd, self.tree)
                else:
                    for tree in order:
                        result[f"{phase}:{tree.key}"] = (self.notify(rnd, tree) if phase == "notify"
                                                         else self.measure(phase, rnd, tree))
            self.rounds.append(result)
        text, summary = self.summarize_compare(context, phases) if a.against else self.summarize(context)
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
        for tree in self.trees:
            if self.args.keep or self.args.setup_only:
                log(f"keeping database {tree.dbname} (--keep)")
            else:
                try:
                    self.drop_db(tree.dbname)
                    log(f"dropped database {tree.dbname}")
                except Exception as exc:  # noqa: BLE001 - report, never mask the real outcome
                    log(f"could not drop {tree.dbname}: {exc}")
            if tree.redis_url and not self.args.keep:
                try:
                    self._redis(tree.redis_url).flushdb()
                except Exception:  # noqa: BLE001
                    pass
        self.remove_worktree()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=15, help="measured seconds per phase (default 15)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up seconds before each phase (default 3)")
    p.add_argument("--runs", type=int, default=1, help="rounds of all phases; medians are reported (default 1)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--workers", type=int, default=0, help="gunicorn sync workers (default 2 x cores)")
    p.add_argument("--dealers", type=int, default=8, help="bench dealers to rotate over (default 8)")
    p.add_argument("--phases", default=None,
                   help=f"comma list of {','.join(ALL_PHASES)} (default {DEFAULT_PHASES}; with --against {COMPARE_PHASES})")
    p.add_argument("--against", metavar="REF",
                   help="compare this tree with REF (e.g. fae4e39): REF is checked out into a temporary git worktree "
                        "and both trees are measured interleaved in this run, with these bench scripts")
    p.add_argument("--against-redis-url", default="redis://127.0.0.1:6379/12",
                   help="with --against: REF's app's own Redis database (default /12; --redis-url is this tree's)")
    p.add_argument("--notify-rows", type=int, default=10_000, help="notify phase: outbox rows to deliver (default 10,000)")
    p.add_argument("--notify-workers", type=int, default=2, help="notify phase: RQ worker processes (default 2)")
    p.add_argument("--notify-class", choices=("simple", "fork"), default="simple",
                   help="notify phase: RQ worker class (default simple, the production setting)")
    p.add_argument("--notify-db", default="dinghuo_notify_bench",
                   help="notify phase: its database (with --against: _a and _b appended)")
    p.add_argument("--notify-redis-url", default="redis://127.0.0.1:6379/8",
                   help="notify phase: its Redis database, flushed before and after (default /8)")
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
    if args.against and (args.keep or args.setup_only):
        p.error("--against builds both trees' databases afresh and drops them: no --keep / --setup-only")
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
