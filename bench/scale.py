#!/usr/bin/env python3
"""Capacity at a brand's size: the same operations on a big and a small database, in one run.

    bench/scale.py                      # full size: 5,000 dealers, 20,000 SKUs, 1,000,000 orders
    bench/scale.py --scale 0.05         # a quick run (250 / 1,000 / 50,000)
    bench/scale.py --reuse              # keep and reuse databases already built at these sizes
    make bench-scale BENCH_ARGS="--scale 0.05"

1. **Build** (each database: `scale`, `scale_small`): the public schema is dropped and
   recreated, `flask --app wsgi db upgrade`, `flask --app wsgi demo seed`, then the bulk rows
   with set-based SQL (bench/scale_load.py: dealers, SKUs, stock in 5 warehouses, two years of
   orders with lines, events, shipments, payments and ledger entries), `VACUUM ANALYZE`, and
   the invariants checked (order totals, events, ledger continuity, credit, stock). The small
   database is the same shape at `--small-scale` (default 0.01: 50 dealers, 200 SKUs, 10,000
   orders).
2. **Serve**: one gunicorn sync worker per database (`-w 1`: "one web process") and one for
   the bare Flask app (bench/bare_flask.py), production-like environment as bench/run.py.
3. **Measure**, small and big alternating per operation, one client at a time (a sync worker
   serves one request at a time, so latency is not queueing and req/s is what one process
   carries): catalogue pages spread over the whole catalogue, order submit (3 lines), a dealer's
   order list (first and a deep page), the console order list (no filter, status + dates,
   dealer search, a deep page), the dashboard, the 100k-row stock Excel export (time and the
   worker's peak memory), then issuing last month's statements and closing last quarter's
   rebates in a process of their own (time and peak RSS from `wait4`).
4. **Report**: p50/p99 per operation on both, the big/small p99 ratio and the targets, the
   bare-Flask ceiling of the same run, machine load; saved in bench/results/scale-<stamp>/.

Only 127.0.0.1 is contacted. PostgreSQL: `--pg-user`@127.0.0.1, databases named by
`--db`/`--small-db` (created through `--maintenance-db` if missing). Redis: `--redis-url`.
"""
import argparse
import datetime
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
import uuid

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)
import run as runbench  # noqa: E402  (helpers: free ports, local HTTP, /proc CPU accounting)
import scale_load  # noqa: E402

ROOT = runbench.ROOT
HOST = runbench.HOST
VENV_BIN = runbench.VENV_BIN if os.path.isdir(runbench.VENV_BIN) else os.path.dirname(sys.executable)
TARGET_RATIO = 1.5  # dealer-facing p99, big / small
CONSOLE_MAX_MS = 1000


def log(msg):
    line = f"[{datetime.datetime.now():%H:%M:%S}] {msg}"
    print(line, flush=True)
    if LOG_FILE:
        with open(LOG_FILE, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


LOG_FILE = None


class Database:
    def __init__(self, key, name, scale, args):
        self.key, self.name, self.scale, self.args = key, name, scale, args
        self.sizes = scale_load.sizes_for(scale)
        self.url = f"postgresql://{args.pg_user}@{HOST}:{args.pg_port}/{name}"
        self.env = self.port = self.proc = self.actors = None
        self.built = {}

    def connect(self, autocommit=False):
        import psycopg

        return psycopg.connect(self.url, autocommit=autocommit, connect_timeout=5)


def ensure_database(db, args):
    import psycopg

    try:
        db.connect(autocommit=True).close()
    except psycopg.OperationalError:
        with psycopg.connect(f"postgresql://{args.pg_user}@{HOST}:{args.pg_port}/{args.maintenance_db}",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db.name}"')


def built_sizes(db):
    try:
        with db.connect(autocommit=True) as conn:
            row = conn.execute("SELECT obj_description('public.orders'::regclass)").fetchone()
        return json.loads(row[0]) if row and row[0] else None
    except Exception:  # noqa: BLE001 - no schema yet
        return None


def build(db, args, out_dir):
    ensure_database(db, args)
    if args.reuse and built_sizes(db) == db.sizes:
        log(f"{db.name}: reusing the database built at {db.sizes}")
        return
    t0 = time.perf_counter()
    with db.connect(autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    flask = [os.path.join(VENV_BIN, "flask"), "--app", "wsgi"]
    for cmd in (flask + ["db", "upgrade"], flask + ["demo", "seed"]):
        res = subprocess.run(cmd, cwd=ROOT, env=db.env, text=True, capture_output=True, timeout=900)
        if res.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}")
    log(f"{db.name}: migrated and demo-seeded in {time.perf_counter() - t0:.0f} s; loading {db.sizes}")
    today = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8))).date()
    end = datetime.datetime.combine(today, datetime.time(), datetime.timezone(datetime.timedelta(hours=8)))
    t1 = time.perf_counter()
    with db.connect() as conn:
        scale_load.load(conn, db.sizes, end_utc=end.astimezone(datetime.timezone.utc), log=log)
    load_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    with db.connect(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        vacuum_s = time.perf_counter() - t2
        problems = scale_load.check(conn)
        counts = scale_load.counts(conn)
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        conn.execute(f"COMMENT ON TABLE orders IS '{json.dumps(db.sizes)}'")
    db.built = {"load_s": load_s, "vacuum_s": vacuum_s, "counts": counts, "size": size, "problems": problems}
    log(f"{db.name}: loaded in {load_s:.0f} s, VACUUM ANALYZE {vacuum_s:.0f} s, {size}; "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    bad = {k: v for k, v in problems.items() if v}
    if bad:
        raise SystemExit(f"{db.name}: invariants broken after the load: {bad}")
    log(f"{db.name}: invariants hold ({', '.join(problems)})")


# --- servers --------------------------------------------------------------------------------

def app_env(db, args, secret):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "TEST_"))}
    env.pop("PYTHONPATH", None)
    blackhole = f"http://{HOST}:9"
    env.update({
        "DATABASE_URL": db.url, "DINGHUO_ENV": "production", "SECRET_KEY": secret,
        "WECHAT_APP_ID": "wx-bench-appid", "WECHAT_APP_SECRET": "bench-app-secret",
        "WECOM_SECRET": "bench-wecom-secret", "WECOM_TOKEN": "bench-wecom-token",
        "WECOM_AES_KEY": "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI", "WECHAT_API_BASE": blackhole,
        "WECOM_API_BASE": blackhole, "WECHATPAY_API_BASE": blackhole, "PYTHONUNBUFFERED": "1",
    })
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    else:
        env.pop("REDIS_URL", None)
    return env


def start_server(name, app_spec, chdir, env, out_dir):
    port = runbench.free_port()
    cmd = [os.path.join(VENV_BIN, "gunicorn"), "-w", "1", "-k", "sync", "-b", f"{HOST}:{port}", "--chdir", chdir,
           "--timeout", "300", "--error-logfile", os.path.join(out_dir, f"gunicorn-{name}.log"), "--log-level", "warning"]
    if os.path.isdir("/dev/shm"):
        cmd += ["--worker-tmp-dir", "/dev/shm"]
    out = open(os.path.join(out_dir, f"gunicorn-{name}.out"), "ab")
    proc = subprocess.Popen(cmd + [app_spec], cwd=chdir, env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=out, stderr=subprocess.STDOUT)
    out.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn {name} exited; see {out_dir}/gunicorn-{name}.*")
        try:
            if runbench.http(port, "GET", "/healthz", timeout=2)[0] == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"gunicorn {name} did not become healthy")


def stop_server(proc):
    if proc is None:
        return
    import signal

    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def worker_pid(proc):
    """The gunicorn worker (the master's only child)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    raw = fh.read()
            except OSError:
                continue
            if int(raw[raw.rfind(")") + 2:].split()[1]) == proc.pid:
                return int(entry)
    return None


def vm_hwm_mb(pid):
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_hwm(pid):
    try:  # "5" clears the peak RSS (VmHWM) of a process we own
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


# --- the operations ---------------------------------------------------------------------------

def request_once(port, method, path, headers, body=None, timeout=300):
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    t0 = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    size = len(resp.read())
    ms = (time.perf_counter() - t0) * 1000
    conn.close()
    return resp.status, ms, size


def operations(db, n):
    """{operation: (kind, count, request maker)}; a maker takes the call number and returns
    (method, path, headers, body, expected status)."""
    dealers = db.actors["dealers"]
    console = {"Cookie": db.actors["cookie"], "Accept": "text/html"}
    today = datetime.date.today()

    def mp(d, extra=None):
        h = {"Authorization": "Bearer " + d["token"], "Accept": "application/json"}
        h.update(extra or {})
        return h

    def catalogue(i):
        # What the mini-program does while a dealer scrolls: the next page after the one it
        # shows (`after=` the previous page's next_after), at positions spread over the whole
        # catalogue, deep pages included (bench/scale_inner.py page_cursors).
        # Dealer by i, position by i // dealers: no page asked twice before every position of
        # every dealer was (a repeat within CATALOGUE_CACHE_SECONDS would be a cache hit).
        d = dealers[i % len(dealers)]
        page, after = d["cursors"][(i // len(dealers)) % len(d["cursors"])]
        query = f"after={after}" if after else "page=1"
        return "GET", f"/api/mp/v1/products?{query}&page_size=20", mp(d), None, 200

    def catalogue_by_number(i):
        d = dealers[i % len(dealers)]
        page = 1 + (i * 37) % d["full_pages"]  # ?page=N (OFFSET), spread over the whole catalogue
        return "GET", f"/api/mp/v1/products?page={page}&page_size=20", mp(d), None, 200

    def submit(i):
        d = dealers[i % len(dealers)]
        skus = d["skus"]
        picked = [skus[(i * 7 + k * 13) % len(skus)] for k in range(3)]
        if len({s[0] for s in picked}) < 3:
            picked = skus[:3]
        body = json.dumps({"lines": [{"sku_id": s, "qty": q} for s, q in picked]})
        return "POST", "/api/mp/v1/orders", mp(d, {"Content-Type": "application/json",
                                                    "Idempotency-Key": uuid.uuid4().hex}), body, 201

    def my_orders(i):
        d = dealers[i % len(dealers)]
        return "GET", "/api/mp/v1/orders?page=1&page_size=20", mp(d), None, 200

    def my_orders_deep(i):
        d = dealers[i % len(dealers)]
        return "GET", "/api/mp/v1/orders?page=5&page_size=20", mp(d), None, 200

    def console_list(i):
        return "GET", "/console/orders", console, None, 200

    def console_filtered(i):
        start = (today - datetime.timedelta(days=90 + i % 30)).isoformat()
        return "GET", f"/console/orders?status=completed&from={start}&to={today.isoformat()}", console, None, 200

    def console_search(i):
        return "GET", f"/console/orders?q=DS{i % 50:03d}", console, None, 200

    def console_deep(i):
        return "GET", f"/console/orders?page={20 + i % 20}", console, None, 200

    def dashboard(i):
        return "GET", "/console/?period=" + ("month", "today")[i % 2], console, None, 200

    def export(i):
        return "GET", "/console/imports/stock/export.xlsx", console, None, 200

    return {
        "catalogue page (20 SKUs), scrolling": ("dealer", n, catalogue),
        "catalogue page by number (OFFSET)": ("jump", n, catalogue_by_number),
        "order submit (3 lines)": ("dealer", n, submit),
        "dealer's order list, page 1": ("dealer", n, my_orders),
        "dealer's order list, page 5": ("dealer", n, my_orders_deep),
        "console orders, no filter": ("console", max(20, n // 4), console_list),
        "console orders, completed + 90 days": ("console", max(20, n // 4), console_filtered),
        "console orders, dealer search": ("console", max(20, n // 4), console_search),
        "console orders, page 20-39": ("console", max(20, n // 4), console_deep),
        "dashboard": ("console", max(10, n // 10), dashboard),
        "stock export (.xlsx)": ("export", 3, export),
    }


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def measure(db, name, count, maker, warmup=3):
    errors, lat, sizes = [], [], []
    pid = worker_pid(db.proc)
    reset_hwm(pid)
    hwm0 = vm_hwm_mb(pid)
    for i in range(-warmup, count):
        method, path, headers, body, expected = maker(i + warmup * 1000)
        status, ms, size = request_once(db.port, method, path, headers, body.encode() if body else None)
        if status != expected:
            errors.append(f"{status} {path}")
        if i >= 0:
            lat.append(ms)
            sizes.append(size)
    return {"p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "max_ms": max(lat), "n": len(lat),
            "rps": 1000 * len(lat) / sum(lat), "errors": errors[:3], "n_errors": len(errors),
            "bytes": statistics.mean(sizes), "worker_hwm_mb": vm_hwm_mb(pid), "worker_hwm0_mb": hwm0}


def run_job(db, args_list):
    """A job in a process of its own: (its JSON output, wall seconds, peak RSS MB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([os.path.join(VENV_BIN, "python"), os.path.join(BENCH_DIR, "scale_inner.py"), *args_list],
                            cwd=ROOT, env=db.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=3600)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"scale_inner.py {' '.join(args_list)} failed on {db.name}:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]), wall, proc.maxrss_mb


class _Popen(subprocess.Popen):
    """Popen that keeps the child's peak RSS (ru_maxrss from wait4)."""

    maxrss_mb = float("nan")

    def _try_wait(self, wait_flags):
        try:
            pid, sts, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0
        if pid:
            self.maxrss_mb = usage.ru_maxrss / 1024
        return pid, sts


subprocess.Popen = _Popen  # only this script's children (gunicorn, flask, the jobs)


def previous_month_and_quarter():
    china = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8))).date()
    last = china.replace(day=1) - datetime.timedelta(days=1)
    q = (china.month - 1) // 3
    year, q = (china.year, q) if q else (china.year - 1, 4)
    return f"{last:%Y-%m}", f"{year}Q{q}"


def ceiling(args, out_dir, n):
    proc, port = start_server("bare", "bare_flask:app", BENCH_DIR, dict(os.environ), out_dir)
    try:
        lat = []
        for i in range(n + 20):
            _status, ms, _size = request_once(port, "GET", "/", {})
            if i >= 20:
                lat.append(ms)
        return {"p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "rps": 1000 * len(lat) / sum(lat), "n": len(lat)}
    finally:
        stop_server(proc)


def report(results, dbs, ceil, jobs, context):
    big, small = dbs
    out = [f"Dinghuo scale run {context['stamp']}: {context['cores']} cores, load avg before {context['load']}, "
           f"one gunicorn sync worker per database, one client; big = {big.sizes}, small = {small.sizes}",
           f"bare Flask ceiling (same run, same settings): p50 {ceil['p50_ms']:.1f} ms, p99 {ceil['p99_ms']:.1f} ms, "
           f"{ceil['rps']:.0f} req/s one worker",
           f"{'operation':<38}{'small p50':>10}{'p99':>8}{'big p50':>10}{'p99':>8}{'ratio':>7}{'big req/s':>10}  target",
           "-" * 110]
    for name, (kind, res_small, res_big) in results.items():
        ratio = res_big["p99_ms"] / res_small["p99_ms"] if res_small["p99_ms"] else float("nan")
        if kind == "dealer":
            target = f"p99 ≤ {TARGET_RATIO}× small: " + ("met" if ratio <= TARGET_RATIO else "NOT MET")
        elif kind == "jump":
            target = "for comparison: jumping to page N (OFFSET); the mini-program scrolls with after="
        elif kind == "console":
            target = f"p99 < {CONSOLE_MAX_MS} ms: " + ("met" if res_big["p99_ms"] < CONSOLE_MAX_MS else "NOT MET")
        else:
            target = (f"< {CONSOLE_MAX_MS} ms? " + ("yes" if res_big["p99_ms"] < CONSOLE_MAX_MS else "no")
                      + f"; worker peak RSS {res_big['worker_hwm0_mb']:.0f} → {res_big['worker_hwm_mb']:.0f} MB, "
                      f"{res_big['bytes'] / 1e6:.1f} MB file")
        errs = ""
        if res_small["n_errors"] or res_big["n_errors"]:
            errs = f"  !! errors small {res_small['n_errors']} big {res_big['n_errors']}: {res_big['errors'] or res_small['errors']}"
        out.append(f"{name:<38}{res_small['p50_ms']:>10.1f}{res_small['p99_ms']:>8.1f}{res_big['p50_ms']:>10.1f}"
                   f"{res_big['p99_ms']:>8.1f}{ratio:>7.2f}{res_big['rps']:>10.1f}  {target}{errs}")
    out.append("-" * 110)
    for name, (res_small, res_big) in jobs.items():
        out.append(f"{name:<38} small {res_small['wall_s']:.1f} s, {res_small['rss_mb']:.0f} MB peak; "
                   f"big {res_big['wall_s']:.1f} s ({res_big['summary']}), {res_big['rss_mb']:.0f} MB peak RSS")
    for db in dbs:
        if db.built:
            built = ("reused (built by an earlier run)" if db.built["load_s"] != db.built["load_s"]  # NaN: --reuse
                     else f"built in {db.built['load_s']:.0f} s (+ VACUUM ANALYZE {db.built['vacuum_s']:.0f} s)")
            out.append(f"{db.name}: {built}, {db.built['size']}")
    out.append(f"machine busy during measurements (all cores): {context['busy']:.0%}")
    return "\n".join(out)


def main(argv=None):
    global LOG_FILE
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="size of the big database (1.0: 5k/20k/1M)")
    parser.add_argument("--small-scale", type=float, default=0.01, help="size of the small one")
    parser.add_argument("--requests", type=int, default=200, help="requests per dealer-facing operation")
    parser.add_argument("--reuse", action="store_true", help="reuse databases already built at the same sizes")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--skip-jobs", action="store_true", help="leave out statements and rebates")
    parser.add_argument("--db", default="scale")
    parser.add_argument("--small-db", default="scale_small")
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--maintenance-db", default="postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args(argv)

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = os.path.join(runbench.RESULTS_DIR, f"scale-{stamp}")
    os.makedirs(out_dir, exist_ok=True)
    LOG_FILE = os.path.join(out_dir, "run.log")
    secret = secrets.token_urlsafe(36)
    small = Database("small", args.small_db, min(args.small_scale, args.scale), args)
    big = Database("big", args.db, args.scale, args)
    dbs = (big, small)
    for db in dbs:
        db.env = app_env(db, args, secret)
    t0 = time.perf_counter()
    for db in (small, big):
        build(db, args, out_dir)
    log(f"databases ready in {time.perf_counter() - t0:.0f} s")
    if args.build_only:
        return 0
    try:
        for db in dbs:
            db.proc, db.port = start_server(db.key, "wsgi:app", ROOT, db.env, out_dir)
            path = os.path.join(out_dir, f"actors-{db.key}.json")
            res = subprocess.run([os.path.join(VENV_BIN, "python"), os.path.join(BENCH_DIR, "scale_inner.py"), "actors",
                                  "--out", path], cwd=ROOT, env=db.env, capture_output=True, text=True, timeout=300)
            if res.returncode:
                raise SystemExit(f"actors failed on {db.name}:\n{res.stderr[-3000:]}")
            with open(path, encoding="utf-8") as fh:
                db.actors = json.load(fh)
            log(f"{db.name}: {len(db.actors['dealers'])} bench dealers, "
                f"{db.actors['dealers'][0]['visible']} visible SKUs each")
        load = os.getloadavg()
        context = {"stamp": stamp, "cores": os.cpu_count(), "load": " ".join(f"{x:.1f}" for x in load)}
        busy0 = runbench.machine_busy_ticks()
        ceil = ceiling(args, out_dir, args.requests * 2)
        log(f"bare Flask: p50 {ceil['p50_ms']:.1f} ms, p99 {ceil['p99_ms']:.1f} ms")
        results = {}
        ops_small, ops_big = operations(small, args.requests), operations(big, args.requests)
        for name, (kind, count, maker_small) in ops_small.items():
            res_small = measure(small, name, count, maker_small)
            res_big = measure(big, name, count, ops_big[name][2])
            results[name] = (kind, res_small, res_big)
            log(f"{name}: small p99 {res_small['p99_ms']:.1f} ms, big p99 {res_big['p99_ms']:.1f} ms"
                + (f"  errors {res_small['errors'] + res_big['errors']}" if res_small['n_errors'] + res_big['n_errors'] else ""))
        busy1 = runbench.machine_busy_ticks()
        context["busy"] = (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1)
        jobs = {}
        if not args.skip_jobs:
            month, quarter = previous_month_and_quarter()
            for label, job in ((f"issue statements {month}", ["statements", "--month", month]),
                               (f"close rebates {quarter}", ["rebates", "--period", quarter])):
                pair = []
                for db in (small, big):
                    summary, wall, rss = run_job(db, job)
                    pair.append({"wall_s": wall, "rss_mb": rss, "summary": summary})
                    log(f"{label} on {db.name}: {wall:.1f} s, peak RSS {rss:.0f} MB, {summary}")
                jobs[label] = tuple(pair)
        for db in dbs:
            if db.built:
                continue
            with db.connect(autocommit=True) as conn:
                db.built = {"load_s": float("nan"), "vacuum_s": float("nan"), "size": conn.execute(
                    "SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]}
        for name, pair in jobs.items():
            pair[1]["summary"] = {k: v for k, v in pair[1]["summary"].items() if k != "rules"}
        text = report(results, dbs, ceil, jobs, context)
        print(text)
        with open(os.path.join(out_dir, "summary.txt"), "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as fh:
            json.dump({"context": context, "ceiling": ceil, "results": results, "jobs": jobs,
                       "built": {db.name: db.built for db in dbs}, "sizes": {db.name: db.sizes for db in dbs}},
                      fh, ensure_ascii=False, indent=1, default=str)
        log(f"saved in {out_dir}")
    finally:
        for db in dbs:
            stop_server(db.proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
