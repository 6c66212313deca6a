#!/usr/bin/env python3
"""Profile the live gunicorn server under wrk: py-spy on every worker, SQL per request.

    .venv/bin/python bench/profile_live.py --scenario orders --duration 20
    .venv/bin/python bench/profile_live.py --scenario catalogue --format raw

Uses bench/run.py's own setup (database built or reused with --keep semantics, bench users,
gunicorn `-w 2×cores -k sync` for `wsgi:app`, production-like env), then, for the scenario:

  1. a warm-up with wrk, then `py-spy record --idle off --subprocesses` on the gunicorn
     master while wrk runs for `--duration` seconds (32 connections); the flame graph
     (`--format flamegraph`, an SVG) or collapsed stacks (`--format raw`) go to
     bench/results/live-<stamp>/, with a self-time and an inclusive-time table by function
     (from the collapsed stacks) printed;
  2. app CPU ms/request of the gunicorn process group over the same window (from /proc);
  3. with `--count-sql` (default on), the statements per request: the server runs with
     DINGHUO_BENCH_SQL_COUNT=1 (see `bench/sqlcount.py`, loaded by gunicorn's config below,
     never by the app), which counts each statement and its time in cursor.execute per
     worker and writes the totals to the results folder when the worker exits.

py-spy is pinned in requirements-dev.txt. Only 127.0.0.1 is contacted.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

import run  # noqa: E402  (bench/run.py)


def parse_collapsed(path, top):
    """Self and inclusive sample shares by function from py-spy's raw (collapsed) output."""
    self_t, incl = collections.Counter(), collections.Counter()
    total = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = [f for f in stack.split(";") if not f.startswith("process ")]
            if not frames:
                continue
            total += n
            names = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f else f
                     for f in frames]
            self_t[names[-1]] += n
            for name in set(names):
                incl[name] += n
    lines = [f"{total} samples"]
    lines.append("-- self time --")
    for name, n in self_t.most_common(top):
        lines.append(f"{n / total * 100:6.1f}%  {name}")
    lines.append("-- inclusive time --")
    for name, n in incl.most_common(top * 2):
        lines.append(f"{n / total * 100:6.1f}%  {name}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", choices=("orders", "catalogue", "orders_1dealer"), default="orders")
    p.add_argument("--duration", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--format", choices=("flamegraph", "raw", "speedscope"), default="raw")
    p.add_argument("--gil", action="store_true", help="py-spy --gil: only samples holding the GIL (CPU in Python, not waits)")
    p.add_argument("--no-spy", action="store_true", help="only CPU and SQL counts, no py-spy")
    p.add_argument("--no-count-sql", action="store_true")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--db-name", default="dinghuo_bench")
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    a = p.parse_args(argv)

    args = run.parse_args(["--keep", "--db-name", a.db_name, "--redis-url", a.redis_url,
                           "--duration", str(a.duration), "--warmup", str(a.warmup)])
    bench = run.Bench(args)
    tree = bench.tree
    out_dir = bench.out_dir
    if not a.no_count_sql:
        tree.env["DINGHUO_BENCH_SQL_COUNT"] = out_dir
        tree.env["GUNICORN_CMD_ARGS"] = "-c " + os.path.join(BENCH_DIR, "sqlcount.py")
    bench.wrk = run.ensure_wrk(False)
    if not bench.wrk:
        run.die("profile_live.py needs wrk")
    try:
        if a.redis_url:
            bench._redis(a.redis_url).flushdb()
        bench.prepare_database(tree)
        with bench._pg(tree.dbname) as conn:
            bench.autovacuum = conn.execute("SHOW autovacuum").fetchone()[0] == "on"
        bench.make_actors(tree)
        bench.start_server(tree.server, "wsgi:app", tree.root, "/healthz", tree.env)
        # (no bench.smoke(): it needs the bare server too; the warm-up below fails loudly instead)
        bench.housekeeping(tree)
        proc, _port = bench.servers[tree.server]
        tag = f"{bench.nonce}-p"
        bench.load(a.scenario, tree, a.warmup, tag + "-w")
        time.sleep(1.0)
        spy = None
        spy_out = os.path.join(out_dir, f"py-spy-{a.scenario}." + {"flamegraph": "svg", "raw": "txt",
                                                                    "speedscope": "json"}[a.format])
        if not a.no_spy:
            spy = subprocess.Popen(
                [os.path.join(run.VENV_BIN, "py-spy"), "record", "--pid", str(proc.pid), "--subprocesses",
                 "--rate", str(a.rate), "--duration", str(a.duration), "--format", a.format, "-o", spy_out,
                 "--nonblocking"] + (["--gil"] if a.gil else []),
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            time.sleep(0.5)
        sampler = run.CpuSampler(proc.pid, tree.dbname)
        sampler.start()
        res, raw = bench.load(a.scenario, tree, a.duration, tag)
        cpu = sampler.stop()
        if spy:
            spy.wait(timeout=a.duration + 60)
        n = max(res["requests"], 1)
        summary = (f"{a.scenario}: {res['rps']:.1f} req/s, p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, "
                   f"app CPU {cpu['app_cpu_s'] * 1000 / n:.2f} ms/req, PG CPU {cpu['pg_cpu_s'] * 1000 / n:.2f} ms/req, "
                   f"machine busy {cpu['machine_busy'] * 100:.0f}%, non-2xx {res['non2xx']}"
                   + (" (py-spy attached)" if spy else ""))
        run.log(summary)
        if spy and a.format == "raw" and os.path.exists(spy_out):
            table = parse_collapsed(spy_out, a.top)
            with open(os.path.join(out_dir, f"py-spy-{a.scenario}-top.txt"), "w") as fh:
                fh.write(summary + "\n" + table + "\n")
            print(table)
    finally:
        bench.stop_servers()  # workers write their SQL counts on exit
        if not a.no_count_sql:
            time.sleep(0.5)
            totals = collections.Counter()
            stmts = collections.defaultdict(lambda: [0, 0.0])
            for name in os.listdir(out_dir):
                if name.startswith("sqlcount-") and name.endswith(".json"):
                    with open(os.path.join(out_dir, name)) as fh:
                        data = json.load(fh)
                    totals.update(data["totals"])
                    for sql, (count, secs) in data["statements"].items():
                        stmts[sql][0] += count
                        stmts[sql][1] += secs
            reqs = max(totals.get("requests", 0), 1)
            if totals:
                print(f"SQL: {totals['statements'] / reqs:.2f} statements/request, "
                      f"{totals['execute_s'] * 1000 / reqs:.2f} ms/request in cursor.execute "
                      f"(over {totals['requests']} requests, warm-up and smoke included)")
                for sql, (count, secs) in sorted(stmts.items(), key=lambda kv: -kv[1][1])[:15]:
                    print(f"  {count / reqs:5.2f}/req {secs * 1000 / max(count, 1):7.3f} ms each  {sql[:150]}")
        run.log(f"results in {os.path.relpath(out_dir, run.ROOT)}/")


if __name__ == "__main__":
    sys.exit(main())
