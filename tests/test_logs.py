"""JSON logs: one line per request, job and delivery, a request id that follows an order from
its HTTP request into the outbox rows, the RQ jobs and the deliveries it causes, and no
secret, token or full phone number in any line."""
import logging

from rq import Queue
from sqlalchemy import select

from app import create_app, logs
from app.extensions import db
from app.notify.models import Outbox
from tests.factories import auth
from tests.helpers import submit
from tests.ops_support import fake_redis, json_lines, run_worker  # noqa: F401  (fixtures)

RID = "req-7f3a9c0e2b4d4e1f"


def failing_job():
    raise ValueError("库存对不上")


def test_a_request_writes_one_json_line_and_returns_its_request_id(client, json_lines):  # noqa: F811
    r = client.get("/api/mp/v1/products", headers={"X-Request-ID": RID})
    assert r.headers["X-Request-ID"] == RID
    [line] = json_lines.of("dinghuo.request")
    assert set(line) >= {"ts", "level", "logger", "msg", "request_id", "method", "path", "endpoint", "status",
                         "duration_ms", "remote_addr"}
    assert line["request_id"] == RID and line["method"] == "GET" and line["path"] == "/api/mp/v1/products"
    assert line["status"] == r.status_code == 401 and line["level"] == "INFO"
    assert line["ts"].endswith("+00:00") and isinstance(line["duration_ms"], float)


def test_an_unusable_incoming_request_id_is_replaced(client):
    for bad in ("short", "has space in it", "x" * 65, "quote\"d-request-id", "<script>alert(1)</script>"):
        r = client.get("/healthz", headers={"X-Request-ID": bad})
        assert r.headers["X-Request-ID"] != bad
        assert len(r.headers["X-Request-ID"]) == 32 and int(r.headers["X-Request-ID"], 16) >= 0
    first, second = client.get("/healthz"), client.get("/healthz")
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]  # generated per request


def test_successful_probes_are_not_logged_but_errors_are(client, json_lines):  # noqa: F811
    client.get("/healthz")
    client.get("/api/mp/v1/no-such-thing")
    assert [line["path"] for line in json_lines.of("dinghuo.request")] == ["/api/mp/v1/no-such-thing"]


def test_an_order_s_request_id_follows_into_its_outbox_rows_jobs_and_deliveries(
        app, client, world, wechat, fake_redis, json_lines):  # noqa: F811
    r = submit(client, {**auth(world.a_buyer), "X-Request-ID": RID}, [{"sku_id": world.cola.id, "qty": 2}])
    assert r.status_code == 201, r.json
    assert r.headers["X-Request-ID"] == RID

    db.session.expire_all()
    rows = db.session.scalars(select(Outbox)).all()
    assert rows and {row.request_id for row in rows} == {RID}
    jobs = Queue("high", connection=fake_redis).get_jobs()
    assert jobs and {job.meta["request_id"] for job in jobs} == {RID}

    run_worker(app, fake_redis)

    job_lines = [line for line in json_lines.of("dinghuo.job") if line["func"] == "app.notify.delivery.deliver"]
    assert len(job_lines) == len(jobs)
    assert {(line["request_id"], line["queue"], line["status"]) for line in job_lines} == {(RID, "high", "finished")}
    deliveries = json_lines.of("dinghuo.delivery")
    assert {(d["request_id"], d["outcome"]) for d in deliveries} == {(RID, "sent")}
    assert {d["outbox_id"] for d in deliveries} == {row.id for row in rows}
    assert wechat.delivered_to("WangYeWu", channel="wecom_app")
    db.session.rollback()  # end the read transaction opened above: see what the worker wrote
    assert {row.status for row in db.session.scalars(select(Outbox))} == {"sent"}


def test_a_failing_job_writes_a_failed_line_with_the_request_id(app, fake_redis, json_lines):  # noqa: F811
    from app import jobs
    from app.kernel import correlation

    with correlation.bound(RID):
        jobs.enqueue(failing_job, queue="low")
    run_worker(app, fake_redis, queues=("low",))
    [line] = json_lines.of("dinghuo.job")
    assert line["func"] == "tests.test_logs.failing_job"
    assert (line["status"], line["error"], line["queue"], line["request_id"]) == ("failed", "ValueError", "low", RID)
    assert line["level"] == "ERROR"


def test_an_in_process_job_is_logged_under_the_request_that_ran_it(app, json_lines):  # noqa: F811
    from app import jobs
    from app.kernel import correlation

    with correlation.bound(RID):
        assert jobs.enqueue(lambda n: n * 2, 21, queue="default") == 42
    [line] = json_lines.of("dinghuo.job")
    assert (line["status"], line["queue"], line["request_id"]) == ("finished", "default", RID)


# --- redaction -------------------------------------------------------------------------------

def test_redact_masks_secrets_tokens_and_phone_numbers():
    cases = {
        "GET https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=S3cr3tValue":
            "GET https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=[redacted]",
        "POST /cgi-bin/message/send?access_token=ACCESS_TOKEN_abc123 failed":
            "POST /cgi-bin/message/send?access_token=[redacted] failed",
        "robot https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4":
            "robot https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=[redacted]",
        '{"username": "ops", "password": "correct-horse-9", "token": "tok\\"en"}':
            '{"username": "ops", "password": "[redacted]", "token": "[redacted]"}',
        "{'appsecret': 'abc', 'js_code': '0a1b2c'}": "{'appsecret': '[redacted]', 'js_code': '[redacted]'}",
        "Authorization: Bearer eyJhbGciOi.J9.sig": "Authorization: Bearer [redacted]",
        "联系人 张三 13812345678，备用 +86 139-0000-1111": "联系人 张三 138****5678，备用 +86 139****1111",
        "call +8613912345678 or 8615012345678": "call +86139****5678 or 86150****5678",
    }
    for raw, expected in cases.items():
        assert logs.redact(raw) == expected, raw


def test_redact_leaves_ordinary_text_alone():
    for text in ("order SO202611260001 approved", "errcode=45009 errmsg=api freq out of limit",
                 "dedupe_key=order:12:approved", "took 1733561234567 ns", "金额 13800 分"):
        assert logs.redact(text) == text


def test_no_secret_or_phone_number_reaches_a_log_line(json_lines):  # noqa: F811
    log = logging.getLogger("app.integrations.wechat")
    log.warning("calling %s for %s", "https://api.weixin.qq.com/sns/jscode2session?appid=wx1&secret=APPSECRET&js_code=CODE",
                "13812345678")
    try:
        raise RuntimeError("token refresh failed: access_token=LEAKED_TOKEN")
    except RuntimeError:
        log.exception("gateway error for %s", {"password": "hunter2"})
    text = "\n".join(json_lines.raw)
    for secret in ("APPSECRET", "CODE", "13812345678", "LEAKED_TOKEN", "hunter2"):
        assert secret not in text
    first, second = json_lines.lines
    assert "138****5678" in first["msg"] and "secret=[redacted]" in first["msg"]
    assert "access_token=[redacted]" in second["exc"] and "RuntimeError" in second["exc"]


def test_production_logs_are_json_lines_through_the_redacting_filter(app, tmp_path):
    prod = create_app({"ENV_NAME": "test", "TESTING": True, "LOG_FORMAT": "json",
                       "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'prod.sqlite3'}"})
    try:
        [handler] = [h for h in logging.getLogger().handlers if getattr(h, "_dinghuo", False)]
        assert isinstance(handler.formatter, logs.JsonFormatter)
        assert any(isinstance(f, logs.RedactingFilter) for f in handler.filters)
        assert prod.config["LOG_FORMAT"] == "json"
    finally:
        logs.configure(app)  # the suite's app logs as text again
