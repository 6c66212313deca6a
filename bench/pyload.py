"""Fallback load generator for when wrk is not available (same scenarios as bench/wrk/*.lua).

Processes x threads with keep-alive-less http.client, fixed duration, 127.0.0.1 only.
It costs far more CPU per request than wrk and competes with the server for the same
cores, so its absolute figures read low; ratios against the bare-Flask ceiling measured
with the same generator in the same run are still meaningful.
"""
import http.client
import itertools
import json
import multiprocessing
import random
import threading
import time

HOST = "127.0.0.1"


def _catalogue_requests(data):
    reqs = []
    for d in data["dealers"]:
        headers = {"Authorization": "Bearer " + d["token"], "Accept": "application/json"}
        for page in range(1, d["full_pages"] + 1):
            reqs.append(("GET", f"/api/mp/v1/products?page={page}&page_size=20", headers, None))
    return reqs


def _make_source(scenario, data, only, tag, worker):
    """A function returning the next (method, path, headers, body) for one thread."""
    if scenario == "bare":
        return lambda: ("GET", "/", {}, None)
    if scenario == "catalogue":
        reqs = _catalogue_requests(data)
        cycle = itertools.cycle(reqs[(worker * 7) % len(reqs):] + reqs[:(worker * 7) % len(reqs)])
        return lambda: next(cycle)
    dealers = [d for d in data["dealers"] if only in ("all", d["code"])]
    rng = random.Random(worker * 7919 + int(time.time()))
    counter = itertools.count(1)

    def next_order():
        k = next(counter)
        d = dealers[(k + worker) % len(dealers)]
        lines = [{"sku_id": s, "qty": q} for s, q in rng.sample(d["skus"], 3)]
        headers = {
            "Authorization": "Bearer " + d["token"], "Content-Type": "application/json",
            "Idempotency-Key": f"{tag}-{worker}-{k}",
        }
        return "POST", "/api/mp/v1/orders", headers, json.dumps({"lines": lines})

    return next_order


def _thread(port, source, deadline, out):
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    lat, bad, errors = [], 0, 0
    while time.perf_counter() < deadline:
        method, path, headers, body = source()
        started = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.will_close:
                conn.close()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            continue
        lat.append(time.perf_counter() - started)
        if resp.status >= 400:
            bad += 1
    out.append((lat, bad, errors))


def _process(port, scenario, data, only, tag, first_worker, n_threads, duration, queue):
    deadline = time.perf_counter() + duration
    out = []
    threads = [
        threading.Thread(target=_thread, args=(port, _make_source(scenario, data, only, tag, first_worker + i), deadline, out))
        for i in range(n_threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = [x for o in out for x in o[0]]
    queue.put((lat, sum(o[1] for o in out), sum(o[2] for o in out)))


def run(port, scenario, *, data=None, only="all", tag="py", connections=32, processes=2, duration=15.0):
    """Drive 127.0.0.1:port; returns {requests, rps, p50_ms, p75_ms, p90_ms, p99_ms, non2xx, socket_errors}."""
    queue = multiprocessing.Queue()
    per = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    procs, first = [], 0
    for n in per:
        procs.append(multiprocessing.Process(
            target=_process, args=(port, scenario, data, only, tag, first, n, duration, queue)))
        first += n
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    lat = sorted(x for r in results for x in r[0])

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    return {
        "requests": len(lat), "seconds": elapsed, "rps": len(lat) / duration,
        "p50_ms": pct(0.50), "p75_ms": pct(0.75), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
        "non2xx": sum(r[1] for r in results), "socket_errors": sum(r[2] for r in results),
        "generator": "python",
    }
