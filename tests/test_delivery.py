"""Notification delivery over real HTTP to the WeChat/WeCom stand-in: the retry rules,
idempotent jobs, per-recipient limits, and the in-process mode (no Redis).

Rows are written with app.notify.service.add inside write_transaction(), the way the
order service's notification hooks write them.
"""
import logging
from datetime import timedelta

import pytest
import redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from app import create_app
from app.database import write_transaction
from app.extensions import db
from app.kernel.clock import utcnow
from app.notify import delivery, service
from app.notify.models import Outbox, SubscribeConsent
from tests.conftest import _base_config, truncate_all

SUBSCRIBE = "/cgi-bin/message/subscribe/send"
APP_MESSAGE = "/cgi-bin/message/send"

def subscribe_payload(order_no="SO202611260001"):
    return {
        "template_id": "demo-tmpl-order-approved",
        "page": f"pages/orders/detail?order_no={order_no}",
        "data": {"character_string1": {"value": order_no}, "thing2": {"value": "订单已审核通过"}},
        "miniprogram_state": "formal",
        "lang": "zh_CN",
    }


def app_message_payload(text):
    return {"msgtype": "text", "text": {"content": text}, "enable_duplicate_check": 1,
            "duplicate_check_interval": 1800}


def add_rows(specs):
    """Write outbox rows in one transaction; specs are dicts for service.add. Returns ids."""
    ids = []
    with write_transaction() as session:
        for n, spec in enumerate(specs):
            spec = {"event": "order_approved", "dedupe_key": f"test:{n}:{spec['recipient']}", "queue": "high", **spec}
            ids.append(service.add(session, **spec))
    return ids


def row(outbox_id):
    db.session.expire_all()
    return db.session.get(Outbox, outbox_id)


def make_due(outbox_id):
    """Pretend the row's wait is over (tests never sleep through a back-off)."""
    with write_transaction() as session:
        session.execute(update(Outbox).where(Outbox.id == outbox_id).values(next_attempt_at=utcnow()))


def sends(standin, path):
    return [r for r in standin.requests if r["path"] == path]


# --- fixtures -------------------------------------------------------------------------

def scheduled_in(app, queue="high"):
    """Seconds from now until each deliver job RQ's scheduler holds on `queue`."""
    conn = redis.Redis.from_url(app.config["REDIS_URL"])
    registry = ScheduledJobRegistry(queue=Queue(queue, connection=conn))
    now = utcnow()
    return [(registry.get_scheduled_time(job_id) - now).total_seconds() for job_id in registry.get_job_ids()]


def queued_ids(app, queue="high"):
    conn = redis.Redis.from_url(app.config["REDIS_URL"])
    return [job.args[0] for job in Queue(queue, connection=conn).get_jobs()]


# --- retry rules against the stand-in (PostgreSQL + Redis) -------------------------------

@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("fault", [{"http_status": 500}, {"errcode": -1}], ids=["http500", "busy-1"])
def test_transient_failure_backs_off_then_fails_after_three_tries(rq_app, wechat, fault):
    (oid,) = add_rows([{"channel": "mp_subscribe", "recipient": "o-DA01-owner", "payload": subscribe_payload()}])
    wechat.fail_next(SUBSCRIBE, times=3, **fault)
    base = rq_app.config["OUTBOX_RETRY_BASE_SECONDS"]

    assert delivery.deliver(oid) == "retry"
    r = row(oid)
    assert (r.status, r.attempts) == ("pending", 1)
    assert (r.next_attempt_at - utcnow()).total_seconds() > base - 5
    assert max(scheduled_in(rq_app)) >= (r.next_attempt_at - utcnow()).total_seconds()  # booked on RQ's scheduler
    assert delivery.deliver(oid) == "skipped"  # not before its time
    assert len(sends(wechat, SUBSCRIBE)) == 1

    make_due(oid)
    assert delivery.deliver(oid) == "retry"
    r = row(oid)
    assert (r.status, r.attempts) == ("pending", 2)
    assert (r.next_attempt_at - utcnow()).total_seconds() > 2 * base - 5  # exponential

    make_due(oid)
    assert delivery.deliver(oid) == "failed"
    r = row(oid)
    assert (r.status, r.attempts) == ("failed", 3)
    assert r.last_errmsg and r.sent_at is None
    if "errcode" in fault:
        assert r.last_errcode == -1
    else:
        assert "500" in r.last_errmsg
    assert len(sends(wechat, SUBSCRIBE)) == 3
    assert wechat.delivered == []


@pytest.mark.postgres
@pytest.mark.redis
def test_transient_failure_then_success_is_sent(rq_app, wechat):
    (oid,) = add_rows([{"channel": "mp_subscribe", "recipient": "o-DA01-owner", "payload": subscribe_payload()}])
    wechat.fail_next(SUBSCRIBE, http_status=502)
    assert delivery.deliver(oid) == "retry"
    make_due(oid)
    assert delivery.deliver(oid) == "sent"
    r = row(oid)
    assert r.status == "sent" and r.sent_at is not None and r.last_errcode is None
    assert len(wechat.delivered) == 1


@pytest.mark.postgres
@pytest.mark.redis
def test_rate_limited_waits_at_least_a_minute_and_is_not_a_failed_try(rq_app, wechat):
    (oid,) = add_rows([{"channel": "mp_subscribe", "recipient": "o-DA01-owner", "payload": subscribe_payload()}])
    wechat.fail_next(SUBSCRIBE, errcode=45009)

    assert delivery.deliver(oid) == "retry"
    r = row(oid)
    assert (r.status, r.attempts, r.last_errcode) == ("pending", 0, 45009)
    assert (r.next_attempt_at - utcnow()).total_seconds() >= 59
    assert min(scheduled_in(rq_app)) >= (r.next_attempt_at - utcnow()).total_seconds()  # runs when due, not before
    assert delivery.deliver(oid) == "skipped"  # a second job before the minute is up sends nothing
    assert len(sends(wechat, SUBSCRIBE)) == 1

    make_due(oid)
    assert delivery.deliver(oid) == "sent"
    assert len(wechat.delivered) == 1


@pytest.mark.postgres
@pytest.mark.redis
def test_robot_over_its_limit_waits_a_minute(rq_app, wechat):
    # The stand-in answers 45009 itself once a robot has sent 20 in a minute.
    (oid,) = add_rows([{"channel": "wecom_robot", "recipient": "default",
                        "payload": {"msgtype": "markdown", "markdown": {"content": "**今日订货** 12 单"}}}])
    wechat.fail_next("/cgi-bin/webhook/send", errcode=45009)
    assert delivery.deliver(oid) == "retry"
    r = row(oid)
    assert (r.status, r.attempts, r.last_errcode) == ("pending", 0, 45009)
    assert (r.next_attempt_at - utcnow()).total_seconds() >= 59


PERMANENT = [
    # (errcode, channel, recipient, payload, how the stand-in is made to refuse)
    (43101, "mp_subscribe", "o-DA01-owner", subscribe_payload(), lambda s: s.fail_next(SUBSCRIBE, errcode=43101)),
    (47003, "mp_subscribe", "o-DA01-owner",
     {**subscribe_payload(), "data": {"thing2": {"value": "这是一段明显超过二十个字符限制的订单说明文字内容"}}}, None),
    (40037, "mp_subscribe", "o-DA01-owner", {**subscribe_payload(), "template_id": "tmpl-deleted"},
     lambda s: s.mark_invalid("tmpl-deleted")),
    (40003, "mp_subscribe", "o-unknown-user", subscribe_payload(), lambda s: s.mark_invalid("o-unknown-user")),
    (81013, "wecom_app", "LeftTheCompany", app_message_payload("新订单待审批"),
     lambda s: s.mark_invalid("LeftTheCompany")),
]


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("errcode,channel,recipient,payload,refuse", PERMANENT, ids=[str(p[0]) for p in PERMANENT])
def test_permanent_error_fails_at_once_with_errcode_visible(rq_app, rq_world, wechat, errcode, channel, recipient,
                                                            payload, refuse):
    (oid,) = add_rows([{"channel": channel, "recipient": recipient, "payload": payload}])
    if refuse:
        refuse(wechat)

    assert delivery.deliver(oid) == "failed"
    r = row(oid)
    assert (r.status, r.attempts, r.last_errcode) == ("failed", 1, errcode)
    assert r.last_errmsg
    assert scheduled_in(rq_app) == [] and queued_ids(rq_app) == [oid]  # just the relay's job: no retry
    assert wechat.delivered == []

    out = rq_app.test_cli_runner().invoke(args=["notify", "failed"])
    assert out.exit_code == 0
    line = next(line for line in out.output.splitlines() if line.strip().startswith(str(oid)))
    assert str(errcode) in line and r.last_errmsg in line


@pytest.mark.postgres
@pytest.mark.redis
def test_user_refused_43101_sets_consent_to_zero(rq_app, rq_world, wechat):
    user = rq_world.a_owner
    with write_transaction() as session:
        session.add(SubscribeConsent(user_id=user.id, template_id="demo-tmpl-order-approved", remaining=3))
        session.add(SubscribeConsent(user_id=user.id, template_id="demo-tmpl-order-shipped", remaining=2))
    (oid,) = add_rows([{"channel": "mp_subscribe", "recipient": user.openid, "payload": subscribe_payload()}])
    wechat.fail_next(SUBSCRIBE, errcode=43101)

    assert delivery.deliver(oid) == "failed"
    db.session.expire_all()
    remaining = dict(db.session.execute(
        select(SubscribeConsent.template_id, SubscribeConsent.remaining).where(SubscribeConsent.user_id == user.id)
    ).all())
    assert remaining == {"demo-tmpl-order-approved": 0, "demo-tmpl-order-shipped": 2}


@pytest.mark.postgres
@pytest.mark.redis
def test_expired_token_once_is_refreshed_and_sent(rq_app, wechat):
    (oid,) = add_rows([{"channel": "mp_subscribe", "recipient": "o-DA01-owner", "payload": subscribe_payload()}])
    wechat.fail_next(SUBSCRIBE, errcode=40001)
    assert delivery.deliver(oid) == "sent"
    r = row(oid)
    assert (r.status, r.attempts) == ("sent", 0)
    assert len(sends(wechat, SUBSCRIBE)) == 2 and len(wechat.delivered) == 1


# --- a job run twice sends once ----------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.redis
def test_job_run_twice_sends_once(rq_app, wechat):
    (oid,) = add_rows([{"channel": "wecom_app", "recipient": "WangYeWu", "payload": app_message_payload("订单待审批")}])
    assert queued_ids(rq_app) == [oid]  # the relay enqueued it after commit
    assert delivery.deliver(oid) == "sent"
    assert delivery.deliver(oid) == "skipped"
    assert len(sends(wechat, APP_MESSAGE)) == 1 and len(wechat.delivered) == 1


@pytest.mark.postgres
@pytest.mark.redis
def test_two_workers_running_the_same_job_at_once_send_once(rq_app, wechat):
    import threading

    (oid,) = add_rows([{"channel": "mp_subscribe", "recipient": "o-DA01-owner", "payload": subscribe_payload()}])
    wechat.fail_next(SUBSCRIBE, delay_seconds=0.5)  # keep the first sender busy
    results = []

    def work():
        with rq_app.app_context():
            results.append(delivery.deliver(oid))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["sent", "skipped", "skipped", "skipped"]
    assert len(sends(wechat, SUBSCRIBE)) == 1 and len(wechat.delivered) == 1


@pytest.mark.postgres
@pytest.mark.redis
def test_worker_drains_duplicate_jobs_with_one_delivery_each(rq_app, wechat):
    from app.jobs import run_worker

    ids = add_rows([{"channel": "mp_subscribe", "recipient": f"o-user-{n}", "payload": subscribe_payload()}
                    for n in range(5)])
    delivery.enqueue_rows([("high", oid) for oid in ids])  # every job twice
    assert sorted(queued_ids(rq_app)) == sorted(ids * 2)
    run_worker(["high"], burst=True, with_scheduler=False)
    db.session.expire_all()
    assert {r.status for r in db.session.scalars(select(Outbox))} == {"sent"}
    assert sorted(d["to"] for d in wechat.delivered) == sorted(f"o-user-{n}" for n in range(5))


@pytest.mark.postgres
@pytest.mark.redis
def test_forking_worker_runs_jobs_in_the_app_context_too(rq_app, wechat):
    from app.jobs import run_worker

    ids = add_rows([{"channel": "mp_subscribe", "recipient": f"o-fork-{n}", "payload": subscribe_payload()}
                    for n in range(3)])
    run_worker(["high"], kind="fork", burst=True, with_scheduler=False)
    assert {row(oid).status for oid in ids} == {"sent"}
    assert sorted(d["to"] for d in wechat.delivered) == [f"o-fork-{n}" for n in range(3)]


@pytest.mark.postgres
@pytest.mark.redis
def test_rq_worker_refuses_an_unknown_queue(rq_app):
    out = rq_app.test_cli_runner().invoke(args=["rq", "worker", "high", "urgent"])
    assert out.exit_code != 0 and "未知队列：urgent" in out.output


# --- per-recipient rate limits ----------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.redis
def test_member_gets_at_most_30_app_messages_a_minute_rest_held_back(rq_app, wechat):
    ids = add_rows([{"channel": "wecom_app", "recipient": "WangYeWu", "payload": app_message_payload(f"提醒 {n}")}
                    for n in range(32)])
    results = [delivery.deliver(oid) for oid in ids]
    assert results.count("sent") == 30 and results.count("held") == 2
    held = [row(oid) for oid, res in zip(ids, results) if res == "held"]
    for r in held:
        assert r.status == "pending" and r.attempts == 0  # deferred, not failed
        assert 0 < (r.next_attempt_at - utcnow()).total_seconds() <= 61
    assert len(wechat.delivered_to("WangYeWu")) == 30 and wechat.dropped == []
    assert len(scheduled_in(rq_app)) == 2
    # Another member is not held back by WangYeWu's window.
    (other,) = add_rows([{"channel": "wecom_app", "recipient": "LiNa", "payload": app_message_payload("提醒"),
                          "dedupe_key": "other"}])
    assert delivery.deliver(other) == "sent"


@pytest.mark.redis
def test_redis_window_is_shared_between_workers(redis_url):
    conn = redis.Redis.from_url(redis_url)
    conn.delete("dinghuo:ratelimit:wecom_robot:default")
    first, second = delivery.RedisRateLimiter(conn), delivery.RedisRateLimiter(redis.Redis.from_url(redis_url))
    taken = [(first if n % 2 else second).acquire("wecom_robot:default", 20, 60) for n in range(22)]
    assert taken[:20] == [0] * 20
    assert all(0 < wait <= 61 for wait in taken[20:])
    conn.delete("dinghuo:ratelimit:wecom_robot:default")


def test_local_window_holds_back_the_excess():
    limiter = delivery.LocalRateLimiter()
    assert [limiter.acquire("wecom_app:u", 3, 60) for _ in range(3)] == [0, 0, 0]
    assert 59 < limiter.acquire("wecom_app:u", 3, 60) <= 61
    assert limiter.acquire("wecom_app:other", 3, 60) == 0


# --- Redis unreachable at commit time ----------------------------------------------------

@pytest.mark.postgres
@pytest.mark.redis
def test_rows_committed_while_redis_is_down_stay_pending_and_the_sweep_delivers_them(
        _pg_schema_url, standin, wechat, redis_url, caplog):
    from app.jobs import run_worker
    from tests.conftest import free_port

    redis.Redis.from_url(redis_url).flushdb()
    config = {**_base_config(standin), "SQLALCHEMY_DATABASE_URI": _pg_schema_url}
    down = create_app({**config, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    with down.app_context():
        truncate_all()
        with caplog.at_level(logging.WARNING, logger="app.notify.delivery"):
            ids = add_rows([{"channel": "mp_subscribe", "recipient": f"o-down-{n}", "payload": subscribe_payload()}
                            for n in range(3)])  # commits without an error
        assert "stay pending" in caplog.text
        assert {row(oid).status for oid in ids} == {"pending"}
        db.session.remove()
        db.engine.dispose()
    assert wechat.requests == []

    back = create_app({**config, "REDIS_URL": redis_url})
    with back.app_context():
        assert delivery.sweep(grace_seconds=0)["enqueued"] == 3
        run_worker(["high"], burst=True, with_scheduler=False)
        assert {row(oid).status for oid in ids} == {"sent"}
        assert delivery.sweep(grace_seconds=0) == {"reclaimed": 0, "failed": 0, "enqueued": 0}
        db.session.remove()
        db.engine.dispose()
    assert sorted(d["to"] for d in wechat.delivered) == ["o-down-0", "o-down-1", "o-down-2"]


# --- sweep, operator commands ------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.redis
def test_sweep_takes_back_an_expired_lease_and_counts_the_try(rq_app, wechat):
    (oid,) = add_rows([{"channel": "mp_subscribe", "recipient": "o-DA01-owner", "payload": subscribe_payload()}])
    past = utcnow() - timedelta(seconds=5)
    with write_transaction() as session:  # a worker claimed it, then died
        session.execute(update(Outbox).where(Outbox.id == oid).values(status="sending", next_attempt_at=past))
    assert delivery.sweep(grace_seconds=0) == {"reclaimed": 1, "failed": 0, "enqueued": 1}
    r = row(oid)
    assert (r.status, r.attempts) == ("pending", 1)
    assert delivery.deliver(oid) == "sent"


@pytest.mark.postgres
@pytest.mark.redis
def test_sweep_leaves_a_live_lease_and_rows_not_yet_due(rq_app, wechat):
    a, b = add_rows([{"channel": "mp_subscribe", "recipient": f"o-{n}", "payload": subscribe_payload()}
                     for n in range(2)])
    future = utcnow() + timedelta(seconds=60)
    with write_transaction() as session:
        session.execute(update(Outbox).where(Outbox.id == a).values(status="sending", next_attempt_at=future))
        session.execute(update(Outbox).where(Outbox.id == b).values(next_attempt_at=future))
    assert delivery.sweep(grace_seconds=0) == {"reclaimed": 0, "failed": 0, "enqueued": 0}


@pytest.mark.postgres
@pytest.mark.redis
def test_sweep_waits_for_a_queue_backlog_before_enqueueing_again(rq_app, wechat):
    ids = add_rows([{"channel": "mp_subscribe", "recipient": f"o-{n}", "payload": subscribe_payload()}
                    for n in range(3)])
    assert sorted(queued_ids(rq_app)) == ids
    assert delivery.sweep(grace_seconds=0)["enqueued"] == 0  # their jobs are still waiting
    conn = redis.Redis.from_url(rq_app.config["REDIS_URL"])
    Queue("high", connection=conn).empty()  # Redis lost them (e.g. restarted without persistence)
    assert delivery.sweep(grace_seconds=0)["enqueued"] == 3
    assert sorted(queued_ids(rq_app)) == ids


@pytest.mark.postgres
@pytest.mark.redis
def test_periodic_sweep_is_booked_once_however_many_workers_start(rq_app):
    from app.jobs import schedule_periodic

    first = schedule_periodic("outbox-sweep", queue="high")
    assert first is not None
    assert schedule_periodic("outbox-sweep", queue="default") is None
    conn = redis.Redis.from_url(rq_app.config["REDIS_URL"])
    booked = [ScheduledJobRegistry(queue=Queue(q, connection=conn)).get_job_ids() for q in ("high", "default")]
    assert booked == [[first.id], []]


@pytest.mark.postgres
@pytest.mark.redis
def test_cli_retry_requeues_failed_rows(rq_app, wechat):
    ids = add_rows([{"channel": "mp_subscribe", "recipient": f"o-{n}", "payload": subscribe_payload()}
                    for n in range(2)])
    wechat.fail_next(SUBSCRIBE, errcode=43101, times=2)
    assert [delivery.deliver(oid) for oid in ids] == ["failed", "failed"]
    runner = rq_app.test_cli_runner()

    out = runner.invoke(args=["notify", "retry"])
    assert out.exit_code != 0 and "--all" in out.output
    out = runner.invoke(args=["notify", "retry", str(ids[0]), "999"])
    assert out.exit_code == 0 and "已重新排队 1 条" in out.output and "999" in out.output
    assert (row(ids[0]).status, row(ids[0]).attempts) == ("pending", 0)
    assert row(ids[1]).status == "failed"
    assert delivery.deliver(ids[0]) == "sent"

    out = runner.invoke(args=["notify", "retry", "--all"])
    assert "已重新排队 1 条" in out.output
    assert delivery.deliver(ids[1]) == "sent"
    assert "没有投递失败的通知" in runner.invoke(args=["notify", "failed"]).output


# --- in-process delivery (no REDIS_URL; SQLite, the embedded default) ---------------------

@pytest.mark.delivers
def test_without_redis_rows_are_delivered_right_after_commit(app, wechat):
    (oid,) = add_rows([{"channel": "mp_subscribe", "recipient": "o-DA01-owner", "payload": subscribe_payload()}])
    assert row(oid).status == "sent"
    assert [d["to"] for d in wechat.delivered] == ["o-DA01-owner"]


@pytest.mark.delivers
def test_rolled_back_rows_are_never_delivered(app, wechat):
    with pytest.raises(RuntimeError):
        with write_transaction() as session:
            service.add(session, channel="mp_subscribe", event="order_approved", recipient="o-x",
                        payload=subscribe_payload(), dedupe_key="rolled-back")
            raise RuntimeError("boom")
    assert "outbox_ids" not in db.session().info
    add_rows([{"channel": "mp_subscribe", "recipient": "o-y", "payload": subscribe_payload()}])
    assert [d["to"] for d in wechat.delivered] == ["o-y"]
    assert db.session.scalars(select(Outbox.recipient)).all() == ["o-y"]


@pytest.mark.delivers
def test_without_redis_a_retry_goes_out_after_a_later_commit(app, wechat):
    (oid,) = add_rows([{"channel": "mp_subscribe", "recipient": "o-first", "payload": subscribe_payload()}])
    assert row(oid).status == "sent"
    wechat.fail_next(SUBSCRIBE, http_status=503)
    (retry_id,) = add_rows([{"channel": "mp_subscribe", "recipient": "o-second", "payload": subscribe_payload(),
                             "dedupe_key": "second"}])
    assert (row(retry_id).status, row(retry_id).attempts) == ("pending", 1)
    make_due(retry_id)
    add_rows([{"channel": "mp_subscribe", "recipient": "o-third", "payload": subscribe_payload(),
               "dedupe_key": "third"}])
    assert row(retry_id).status == "sent"
    assert sorted(d["to"] for d in wechat.delivered) == ["o-first", "o-second", "o-third"]


@pytest.mark.delivers
def test_without_redis_a_transient_failure_leaves_the_rest_of_the_batch_for_later(app, wechat):
    wechat.fail_next(SUBSCRIBE, http_status=500)
    ids = add_rows([{"channel": "mp_subscribe", "recipient": f"o-{n}", "payload": subscribe_payload()}
                    for n in range(3)])
    assert [(row(oid).status, row(oid).attempts) for oid in ids] == [("pending", 1), ("pending", 0), ("pending", 0)]
    assert len(sends(wechat, SUBSCRIBE)) == 1  # the request spent one timeout on WeChat, not three
    add_rows([{"channel": "mp_subscribe", "recipient": "o-next", "payload": subscribe_payload(),
               "dedupe_key": "next"}])
    assert [row(oid).status for oid in ids] == ["pending", "sent", "sent"]  # due ones went out with it


@pytest.mark.delivers
def test_cli_sweep_without_redis_delivers_due_rows(app, wechat, runner):
    wechat.fail_next(SUBSCRIBE, http_status=500)
    (oid,) = add_rows([{"channel": "mp_subscribe", "recipient": "o-a", "payload": subscribe_payload()}])
    assert row(oid).status == "pending"
    make_due(oid)
    out = runner.invoke(args=["notify", "sweep"])
    assert out.exit_code == 0 and "重新排队 1 条" in out.output
    assert row(oid).status == "sent"


def test_rq_worker_refuses_without_redis(runner):
    out = runner.invoke(args=["rq", "worker"])
    assert out.exit_code != 0 and "REDIS_URL" in out.output


@pytest.mark.delivers
def test_an_unexpected_error_after_the_claim_is_a_transient_failure_not_a_stuck_row(app, wechat, monkeypatch):
    class Broken:
        def acquire(self, *args):
            raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(delivery, "rate_limiter", Broken)
    (oid,) = add_rows([{"channel": "wecom_app", "recipient": "WangYeWu", "payload": app_message_payload("提醒")}])
    r = row(oid)
    assert (r.status, r.attempts) == ("pending", 1)
    assert "ConnectionError" in r.last_errmsg
    assert wechat.requests == []
