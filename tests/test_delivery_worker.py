"""A real `flask --app wsgi rq worker` process killed mid-delivery (SIGKILL): after a new
worker and its periodic sweep, every row is sent and WeCom (the stand-in) shows each
message delivered exactly once."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.kernel.clock import utcnow
from app.notify.models import Outbox
from tests.test_delivery import APP_MESSAGE, add_rows, app_message_payload, row, sends, subscribe_payload


ROOT = Path(__file__).resolve().parent.parent


def worker_env(app, standin, **overrides):
    env = {
        **os.environ,
        "DINGHUO_ENV": "development",
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "WECHAT_API_BASE": standin.base_url,
        "WECOM_API_BASE": standin.base_url,
        "WECHAT_APP_ID": app.config["WECHAT_APP_ID"],
        "WECHAT_APP_SECRET": app.config["WECHAT_APP_SECRET"],
        "WECHAT_HTTP_TIMEOUT": "2",
        "OUTBOX_LEASE_SECONDS": "5",
        "OUTBOX_SWEEP_SECONDS": "1",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def start_worker(env, log_path):
    log = open(log_path, "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.shifted", "flask", "--app", "wsgi", "rq", "worker", "high"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def all_sent():
    db.session.expire_all()
    return set(db.session.scalars(select(Outbox.status))) == {"sent"}


@pytest.mark.postgres
@pytest.mark.redis
def test_worker_killed_mid_delivery_loses_nothing_and_sends_nothing_twice(rq_app, wechat, tmp_path):
    members = [f"Rep{n}" for n in range(6)]
    ids = add_rows([{"channel": "wecom_app", "recipient": m, "payload": app_message_payload(f"订单 SO{n} 待审批")}
                    for n, m in enumerate(members)])
    wechat.fail_next(APP_MESSAGE, delay_seconds=1.5)  # WeCom is slow to answer the first message
    env = worker_env(rq_app, wechat)
    log_path = tmp_path / "worker.log"

    first = start_worker(env, log_path)
    try:
        wait_for(lambda: sends(wechat, APP_MESSAGE), 30, "the first worker to start sending")
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its scheduler die mid-request
        first.wait(10)
    finally:
        stop(first, signal.SIGKILL)
    killed = [oid for oid in ids if row(oid).status == "sending"]
    assert len(killed) == 1, log_path.read_text()

    # RQ hands the dead worker's scheduler lock to another worker only after its TTL
    # (61 s) and that worker's next maintenance run (minutes), so the new worker's own
    # scheduler is usually not running yet: run the sweep as an operator would. On a busy
    # machine the first worker may die before its scheduler took the lock; then the new
    # worker's periodic sweep (every second here) can reclaim the row first, and the
    # operator's sweep finds nothing left to reclaim.
    second = start_worker(env, log_path)
    try:
        wait_for(lambda: row(killed[0]).next_attempt_at < utcnow(), 30, "the lease to expire")
        out = rq_app.test_cli_runner().invoke(args=["notify", "sweep"])
        if "收回中断的投递 1 条" in out.output:
            assert "重新排队 1 条" in out.output, out.output
        else:
            assert "收回中断的投递 0 条" in out.output, out.output
            again = row(killed[0])  # reclaimed: no longer sending, or sending on a fresh lease
            assert again.status != "sending" or again.next_attempt_at > utcnow(), "nobody reclaimed it"
        wait_for(all_sent, 60, "every row to be sent")
    finally:
        stop(second)
    assert row(killed[0]).attempts == 1  # the interrupted try counts
    # The interrupted message reached WeCom twice; its duplicate check dropped the second.
    assert len(sends(wechat, APP_MESSAGE)) == len(ids) + 1
    assert sorted(d["to"] for d in wechat.delivered) == sorted(members)


@pytest.mark.postgres
@pytest.mark.redis
def test_worker_scheduler_runs_the_periodic_sweep_for_rows_redis_missed(rq_app, wechat, tmp_path):
    from tests.conftest import free_port

    # Committed while Redis was unreachable: pending, enqueued nowhere.
    rq_app.config["REDIS_URL"], redis_url = f"redis://127.0.0.1:{free_port()}/0", rq_app.config["REDIS_URL"]
    rq_app.extensions.pop("dinghuo_redis", None)
    ids = add_rows([{"channel": "mp_subscribe", "recipient": f"o-missed-{n}", "payload": subscribe_payload()}
                    for n in range(4)])
    rq_app.config["REDIS_URL"] = redis_url
    rq_app.extensions.pop("dinghuo_redis", None)
    assert {row(oid).status for oid in ids} == {"pending"}

    worker = start_worker(worker_env(rq_app, wechat), tmp_path / "worker.log")
    try:
        wait_for(all_sent, 60, "the periodic sweep to deliver every row")
    finally:
        stop(worker)
    assert sorted(d["to"] for d in wechat.delivered) == [f"o-missed-{n}" for n in range(4)]
