"""Notification delivery benchmark: drain outbox rows -> RQ -> HTTP to the WeChat stand-in.

    .venv/bin/python bench/notify.py                      # 10,000 rows (forking Worker: 1,000), 2 workers
    .venv/bin/python bench/notify.py --classes simple --rows 10000 --workers 2
    make bench-notify

For each worker class it starts `--workers` real `flask --app wsgi rq worker high low`
processes (the production command, `--no-scheduler`), then in the same run:

1. RQ's own rate: `--noop-jobs` no-op jobs (bench/notify_jobs.noop) on queue `low`;
2. delivery: `--rows` pending outbox rows (90 % mini-program subscribe messages to distinct
   openids, 10 % WeCom app messages to distinct members, the channels order events use),
   enqueued by the relay's own function (one Redis pipeline), drained by the same workers
   through app.notify.delivery.deliver -> gateway -> HTTP to the stand-in.

It prints jobs/s and deliveries/s side by side, the total drain time, the workers' CPU
per job, and checks that every row is `sent` and the stand-in received each message exactly
once. PostgreSQL gets its own database (dropped afterwards unless --keep), Redis its own
database (flushed before and after). The stand-in (bench/notify_standin.py) runs in a
process of its own on 127.0.0.1, with HTTP keep-alive as WeChat's servers have.

`--app-root DIR` measures another Dinghuo tree's app with these bench scripts (bench/run.py
--against does that; bench/treelayout.py finds the app code in either layout).
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent  # the bench's own tree: results go there
sys.path.insert(0, str(BENCH_DIR))
import treelayout  # noqa: E402

APP_ROOT = ROOT  # the tree under test (--app-root); set in main()

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=10_000, help="outbox rows to deliver per worker class")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--classes", default="simple,fork", help="worker classes to measure: simple, fork")
    p.add_argument("--fork-rows", type=int, default=1_000,
                   help="rows for the forking worker (it is ~10x slower; its time for --rows is extrapolated)")
    p.add_argument("--noop-jobs", type=int, default=5_000, help="no-op jobs for RQ's own rate")
    p.add_argument("--fork-noop-jobs", type=int, default=1_000, help="no-op jobs for the forking worker")
    p.add_argument("--wecom-share", type=float, default=0.1, help="share of rows that are WeCom app messages")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server URL (no database)")
    p.add_argument("--database", default="dinghuo_notify_bench")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    p.add_argument("--timeout", type=int, default=600, help="seconds to wait for one drain")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--app-root", default=os.environ.get("BENCH_APP_ROOT") or str(ROOT),
                   help="the Dinghuo tree whose app is measured (default: this one)")
    p.add_argument("--results-dir", help="where to save summary.txt/json and logs "
                                         "(default bench/results/notify-<timestamp>/)")
    return p.parse_args()


# --- processes ----------------------------------------------------------------------------

def proc_cpu_seconds(pid):
    """utime+stime of a process and its reaped children (forked work horses included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / CLK_TCK


def start_workers(n, kind, env, log_dir):
    procs = []
    for i in range(n):
        log = open(log_dir / f"worker-{kind}-{i}.log", "ab")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "rq", "worker", "high", "low",
             "--worker-class", kind, "--no-scheduler", "--name", f"bench-{kind}-{i}-{os.getpid()}"],
            cwd=APP_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
    return procs


def stop_workers(procs):
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


# --- the run ------------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.results_dir = Path(args.results_dir) if args.results_dir else \
            ROOT / "bench" / "results" / f"notify-{datetime.now():%Y%m%d-%H%M%S}"
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.lines = []

    def say(self, msg=""):
        print(msg, flush=True)
        self.lines.append(msg)

    def setup(self):
        import psycopg
        import redis

        with psycopg.connect(f"{self.args.pg}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.args.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.args.database}"')
        self.redis = redis.Redis.from_url(self.args.redis_url)
        self.redis.flushdb()
        self.standin_port = free_port()
        self.standin_url = f"http://127.0.0.1:{self.standin_port}"
        self.standin = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "notify_standin.py"), str(self.standin_port)],
            cwd=APP_ROOT, stdout=subprocess.PIPE, stderr=open(self.results_dir / "standin.log", "ab"),
            start_new_session=True,
        )
        if self.standin.stdout.readline().strip() != b"ready":
            raise SystemExit(f"the stand-in did not start; see {self.results_dir}/standin.log")
        self.env = {
            **os.environ,
            "DINGHUO_ENV": "development",
            "DATABASE_URL": f"{self.args.pg}/{self.args.database}",
            "REDIS_URL": self.args.redis_url,
            "WECHAT_API_BASE": self.standin_url,
            "WECOM_API_BASE": self.standin_url,
            "WECHAT_APP_ID": "wx-demo-appid",
            "WECHAT_APP_SECRET": "demo-app-secret",
            "BENCH_APP_ROOT": str(APP_ROOT),
            # the workers import the app from their cwd (APP_ROOT) and the no-op job from here
            "PYTHONPATH": str(BENCH_DIR),
        }
        os.environ.update({k: self.env[k] for k in ("DATABASE_URL", "REDIS_URL", "WECHAT_API_BASE", "WECOM_API_BASE")})
        from flask_migrate import upgrade

        self.app = treelayout.load("create_app")()
        with self.app.app_context():
            upgrade(directory=str(APP_ROOT / "migrations"))

    def teardown(self):
        """Also after a setup that stopped half-way (Ctrl-C, SIGTERM from bench/run.py)."""
        import psycopg

        if getattr(self, "redis", None) is not None:
            self.redis.flushdb()
        if getattr(self, "standin", None) is not None and self.standin.poll() is None:
            os.killpg(self.standin.pid, signal.SIGTERM)
            self.standin.wait(10)
        if not self.args.keep:
            if getattr(self, "app", None) is not None:
                db = treelayout.load("db")
                with self.app.app_context():
                    db.engine.dispose()
            with psycopg.connect(f"{self.args.pg}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.args.database}" WITH (FORCE)')

    def wait_workers(self, procs, n):
        from rq import Worker

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"a worker exited early; see {self.results_dir}")
            if Worker.count(connection=self.redis) >= n:
                return
            time.sleep(0.1)
        raise SystemExit("workers did not register within 60 s")

    def noop_rate(self, procs, count):
        from rq import Queue

        queue = Queue("low", connection=self.redis)
        datas = [Queue.prepare_data("notify_jobs.noop", timeout=30, result_ttl=0) for _ in range(count)]
        cpu0 = sum(proc_cpu_seconds(p.pid) for p in procs)
        t0 = time.perf_counter()
        with self.redis.pipeline() as pipe:
            queue.enqueue_many(datas, pipeline=pipe)
            pipe.execute()
        while queue.count or queue.started_job_registry.count:
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        cpu = sum(proc_cpu_seconds(p.pid) for p in procs) - cpu0
        failed = queue.failed_job_registry.count
        return {"jobs": count, "seconds": elapsed, "rate": count / elapsed,
                "cpu_ms_per_job": 1000 * cpu / count, "failed": failed}

    def make_rows(self, count):
        """Pending outbox rows like order events write them (not timed)."""
        from sqlalchemy import insert

        db, utcnow, Outbox = treelayout.load("db"), treelayout.load("utcnow"), treelayout.load("Outbox")

        rows, now = [], utcnow()
        wecom_every = round(1 / self.args.wecom_share) if self.args.wecom_share > 0 else 0
        for n in range(count):
            marker = f"N{n:06d}"
            if wecom_every and n % wecom_every == 0:
                channel, recipient = "wecom_app", f"BenchRep{n:06d}"
                payload = {"msgtype": "text", "text": {"content": f"订单 SO2026112{n:06d} 待审批（{marker}）"},
                           "enable_duplicate_check": 1, "duplicate_check_interval": 1800}
            else:
                channel, recipient = "mp_subscribe", f"o-bench-{n:06d}"
                payload = {"template_id": "demo-tmpl-order-approved",
                           "page": f"pages/orders/detail?order_no=SO2026112{n:06d}",
                           "data": {"character_string1": {"value": marker}, "thing2": {"value": "订单已审核通过"}},
                           "miniprogram_state": "formal", "lang": "zh_CN"}
            rows.append({"dedupe_key": f"bench:{marker}", "queue": "high", "channel": channel,
                         "event": "order_approved", "recipient": recipient, "payload": payload,
                         "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
                         "updated_at": now})
        with self.app.app_context():
            with db.engine.begin() as conn:
                conn.exec_driver_sql("TRUNCATE outbox RESTART IDENTITY")
                for i in range(0, len(rows), 1000):
                    conn.execute(insert(Outbox.__table__), rows[i:i + 1000])
                conn.exec_driver_sql("ANALYZE outbox")
                ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM outbox ORDER BY id")]
        return ids

    def status_counts(self):
        db = treelayout.load("db")

        with self.app.app_context(), db.engine.connect() as conn:
            return dict(conn.exec_driver_sql("SELECT status, count(*) FROM outbox GROUP BY status").all())

    def drain(self, procs, count):
        enqueue_rows = treelayout.load("enqueue_rows")

        ids = self.make_rows(count)
        requests.post(f"{self.standin_url}/_standin/reset", timeout=10).raise_for_status()
        cpu0 = sum(proc_cpu_seconds(p.pid) for p in procs)
        t0 = time.perf_counter()
        with self.app.app_context():
            enqueue_rows([("high", oid) for oid in ids])
        enqueued = time.perf_counter() - t0
        deadline = time.monotonic() + self.args.timeout
        counts = {}
        while time.monotonic() < deadline:
            counts = self.status_counts()
            if counts.get("sent", 0) + counts.get("failed", 0) >= len(ids):
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - t0
        cpu = sum(proc_cpu_seconds(p.pid) for p in procs) - cpu0
        seen = requests.get(f"{self.standin_url}/_bench/markers", timeout=60).json()
        markers = seen["delivered"]
        expected = {f"N{n:06d}" for n in range(len(ids))}
        exactly_once = set(markers) == expected and all(v == 1 for v in markers.values())
        return {"rows": len(ids), "seconds": elapsed, "enqueue_seconds": enqueued,
                "rate": counts.get("sent", 0) / elapsed, "counts": counts,
                "delivered": sum(markers.values()), "dropped": seen["dropped"],
                "exactly_once": exactly_once, "cpu_ms_per_delivery": 1000 * cpu / len(ids)}

    def run(self):
        args = self.args
        tree = "" if APP_ROOT == ROOT else f" (app of {APP_ROOT})"
        self.say(f"Dinghuo notification bench{tree} {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: "
                 f"{os.cpu_count()} cores, {args.workers} workers, {args.rows} rows, {args.noop_jobs} no-op jobs")
        results = {}
        try:
            self.setup()
            for kind in [k.strip() for k in args.classes.split(",") if k.strip()]:
                self.redis.flushdb()
                procs = start_workers(args.workers, kind, self.env, self.results_dir)
                try:
                    self.wait_workers(procs, args.workers)
                    fork = kind == "fork"
                    noop = self.noop_rate(procs, args.fork_noop_jobs if fork else args.noop_jobs)
                    self.say(f"[{kind}] no-op: {noop['rate']:.0f} jobs/s")
                    drain = self.drain(procs, args.fork_rows if fork else args.rows)
                    self.say(f"[{kind}] delivery: {drain['rate']:.0f} deliveries/s, {drain['seconds']:.1f} s, "
                             f"{drain['counts']}")
                finally:
                    stop_workers(procs)
                results[kind] = {"noop": noop, "drain": drain}
        finally:
            self.teardown()
        self.report(results)

    def report(self, results):
        a = self.args
        self.say()
        self.say(f"{'worker class':<22}{'no-op jobs/s':>13}{'rows':>7}{'deliveries/s':>14}{'drain s':>9}"
                 f"{'s for ' + str(a.rows):>12}{'% of no-op':>11}{'CPU ms/job':>11}{'CPU ms/delivery':>16}"
                 "  all sent, each once?")
        names = {"simple": "SimpleWorker", "fork": "Worker (forking)"}
        ok = True
        for kind, r in results.items():
            noop, drain = r["noop"], r["drain"]
            good = drain["counts"].get("sent", 0) == drain["rows"] and drain["exactly_once"]
            ok = ok and good
            full = a.rows / drain["rate"] if drain["rate"] else float("inf")
            measured = drain["rows"] == a.rows
            self.say(f"{names[kind] + ' x' + str(a.workers):<22}{noop['rate']:>13.0f}{drain['rows']:>7}"
                     f"{drain['rate']:>14.0f}{drain['seconds']:>9.1f}"
                     f"{('' if measured else '~') + format(full, '.0f'):>12}"
                     f"{100 * drain['rate'] / noop['rate']:>10.1f}%"
                     f"{noop['cpu_ms_per_job']:>11.2f}{drain['cpu_ms_per_delivery']:>16.2f}  "
                     f"{'yes' if good else 'NO'} (stand-in delivered {drain['delivered']}, dropped {drain['dropped']})")
        self.say(f"target: {a.rows} rows delivered exactly once in <= 60 s (>= {a.rows / 60:.0f} deliveries/s); "
                 "~ = extrapolated from the rows measured")
        (self.results_dir / "summary.txt").write_text("\n".join(self.lines) + "\n")
        (self.results_dir / "summary.json").write_text(json.dumps(results, indent=2, default=str))
        self.say(f"saved in {os.path.relpath(self.results_dir, ROOT)}/")
        if not ok:
            sys.exit(1)


def main():
    global APP_ROOT
    args = parse_args()
    os.environ["BENCH_APP_ROOT"] = str(Path(args.app_root).resolve())
    APP_ROOT = Path(treelayout.use_app_root())

    def on_sigterm(signum, _frame):  # run.py stops us this way: clean up as on Ctrl-C
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_sigterm)
    Bench(args).run()


if __name__ == "__main__":
    main()
