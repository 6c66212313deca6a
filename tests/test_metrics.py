"""GET /metrics: the series docs/production.md promises, after a request and a failing job;
outbox backlog and age by the kernel clock; delivery error codes; who may read it; and
gunicorn's multi-process mode (PROMETHEUS_MULTIPROC_DIR) adding up every worker."""
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from app import jobs
from app.database import write_transaction
from app.notify import delivery, service
from tests.conftest import free_port
from tests.ops_support import fake_redis, run_worker  # noqa: F401  (fake_redis: a fixture)

ROOT = Path(__file__).resolve().parent.parent


def failing_job():
    raise RuntimeError("boom")


def scrape(client, **kwargs):
    r = client.get("/metrics", **kwargs)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Type"].startswith("text/plain")
    return samples(r.get_data(as_text=True))


def samples(text):
    """{(name, frozenset(labels)): value} of every sample."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found, name, **labels):
    return found.get((name, frozenset(labels.items())))


def add_row(channel="wecom_app", recipient="WangYeWu", n=0):
    with write_transaction() as session:
        return service.add(session, channel=channel, event="order_submitted", recipient=recipient,
                           payload={"msgtype": "text", "text": {"content": "新订单"}}, dedupe_key=f"metrics:{n}")


def test_requests_are_counted_and_timed_per_endpoint(client):
    before = scrape(client)
    client.get("/healthz")
    client.get("/api/mp/v1/products")  # 401 without a token
    found = scrape(client)
    count = "flask_http_request_duration_seconds_count"
    healthz = dict(method="GET", endpoint="health.healthz", status="200")
    assert value(found, count, **healthz) == (value(before, count, **healthz) or 0) + 1
    assert any(name == count and dict(labels)["status"] == "401" and dict(labels)["endpoint"] != "None"
               for name, labels in found)
    assert value(found, "flask_http_request_duration_seconds_bucket", le="+Inf", **healthz) >= 1
    assert value(found, "flask_http_request_total", method="GET", status="200") >= 1
    assert not any(dict(labels).get("endpoint") == "metrics" for _, labels in found)  # scrapes are not counted


def test_outbox_backlog_and_oldest_age_per_channel(app, client, clock):
    add_row(n=1)
    clock.advance(timedelta(seconds=90))
    add_row(n=2)
    add_row(channel="wecom_robot", recipient="default", n=3)
    clock.advance(timedelta(seconds=30))
    found = scrape(client)
    assert value(found, "dinghuo_outbox_backlog", channel="wecom_app", status="pending") == 2
    assert value(found, "dinghuo_outbox_backlog", channel="wecom_robot", status="pending") == 1
    assert value(found, "dinghuo_outbox_backlog", channel="mp_subscribe", status="pending") == 0
    assert value(found, "dinghuo_outbox_oldest_undelivered_age_seconds", channel="wecom_app") == 120
    assert value(found, "dinghuo_outbox_oldest_undelivered_age_seconds", channel="wecom_robot") == 30
    assert value(found, "dinghuo_outbox_oldest_undelivered_age_seconds", channel="mp_subscribe") == 0
    assert value(found, "dinghuo_metrics_source_up", source="database") == 1


def test_wechat_error_codes_and_delivery_outcomes_are_counted(app, client, wechat):
    before = scrape(client)
    oid = add_row()
    wechat.fail_next("/cgi-bin/message/send", errcode=45009)
    assert delivery.deliver(oid) == "retry"
    found = scrape(client)
    errors = dict(channel="wecom_app", errcode="45009")
    assert value(found, "dinghuo_delivery_errors_total", **errors) == (
        value(before, "dinghuo_delivery_errors_total", **errors) or 0) + 1
    retries = dict(channel="wecom_app", outcome="retry")
    assert value(found, "dinghuo_outbox_deliveries_total", **retries) == (
        value(before, "dinghuo_outbox_deliveries_total", **retries) or 0) + 1


def test_queue_depth_and_job_failures_per_queue(app, client, fake_redis):  # noqa: F811
    before = scrape(client)
    jobs.enqueue(failing_job, queue="low")
    jobs.enqueue(failing_job, queue="low")
    jobs.enqueue(failing_job, queue="default")
    found = scrape(client)
    assert value(found, "dinghuo_queue_depth", queue="low") == 2
    assert value(found, "dinghuo_queue_depth", queue="default") == 1
    assert value(found, "dinghuo_queue_depth", queue="high") == 0
    assert value(found, "dinghuo_metrics_source_up", source="redis") == 1

    run_worker(app, fake_redis, queues=("low",))
    found = scrape(client)
    assert value(found, "dinghuo_queue_depth", queue="low") == 0
    assert value(found, "dinghuo_queue_failed_jobs", queue="low") == 2
    assert value(found, "dinghuo_queue_failed_jobs", queue="default") == 0
    failed = dict(queue="low", status="failed")
    assert value(found, "dinghuo_jobs_total", **failed) == (value(before, "dinghuo_jobs_total", **failed) or 0) + 2


def test_unreachable_redis_is_reported_not_raised(app, client):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    found = scrape(client)
    assert value(found, "dinghuo_metrics_source_up", source="redis") == 0
    assert value(found, "dinghuo_metrics_source_up", source="database") == 1


# --- who may read it ---------------------------------------------------------------------------

def test_metrics_are_refused_from_other_addresses_and_through_the_proxy(client):
    r = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert r.json["error"]["message"] == "无权读取监控指标"
    r = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})  # the proxy on this host
    assert r.status_code == 403
    assert client.get("/metrics").status_code == 200  # this host, directly


def test_metrics_token_opens_it_from_anywhere(app, client):
    app.config["METRICS_TOKEN"] = "scrape-token-0123456789"
    far = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}, **far).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123456789",
                                           "X-Forwarded-For": "203.0.113.9"}, **far).status_code == 200


def test_metrics_allow_list_is_configurable(tmp_path, monkeypatch):
    from app import create_app
    from app.config import ConfigError

    monkeypatch.setenv("METRICS_ALLOW", "10.0.0.0/8, 192.168.1.7")
    # A database of its own: a second engine on the suite's file would outlive the file's swaps.
    other = create_app({"ENV_NAME": "test", "TESTING": True, "REDIS_URL": None,
                        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'other.sqlite3'}"})
    assert other.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "10.2.3.4"}).status_code == 200
    assert other.test_client().get("/metrics").status_code == 403  # 127.0.0.1 is no longer listed
    monkeypatch.setenv("METRICS_ALLOW", "10.0.0.0/33")
    with pytest.raises(ConfigError, match="METRICS_ALLOW"):
        create_app({"ENV_NAME": "test"})


# --- gunicorn, multi-process ---------------------------------------------------------------------

def _wait_for(url, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return requests.get(url, timeout=5)
        except (requests.ConnectionError, requests.Timeout):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_gunicorn_config_serves_probes_and_multiprocess_metrics(_sqlite_template, tmp_path, standin):
    """`gunicorn -c gunicorn.conf.py wsgi:app` with two workers: /healthz, /readyz, JSON logs,
    and /metrics adding up the requests both workers served."""
    database = tmp_path / "dinghuo.sqlite3"
    shutil.copy(_sqlite_template, database)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS", "DATABASE_URL", "REDIS_URL"))}
    env.update({
        "DATABASE_URL": f"sqlite:///{database}", "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "LOG_FORMAT": "json",
        "WECHAT_API_BASE": standin.base_url, "WECOM_API_BASE": standin.base_url,
    })
    stderr = tmp_path / "gunicorn.err"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        base = f"http://127.0.0.1:{port}"
        assert _wait_for(f"{base}/healthz").json() == {"status": "ok"}
        ready = requests.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["migrations"]["ok"] is True
        for _ in range(20):
            assert requests.get(f"{base}/api/mp/v1/products", timeout=5,
                                headers={"X-Request-ID": "gunicorn-req-0001"}).status_code == 401
        found = samples(requests.get(f"{base}/metrics", timeout=5).text)
        served = sum(v for (name, labels), v in found.items()
                     if name == "flask_http_request_duration_seconds_count" and dict(labels)["status"] == "401")
        assert served == 20
        assert ("dinghuo_outbox_backlog", frozenset({"channel": "wecom_app", "status": "pending"}.items())) in found
        assert len(list((tmp_path / "metrics").glob("*.db"))) >= 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = stderr.read_text(encoding="utf-8")
    import json

    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    requests_logged = [line for line in lines if line.get("logger") == "dinghuo.request"]
    assert len(requests_logged) == 20 and {line["request_id"] for line in requests_logged} == {"gunicorn-req-0001"}
    assert any(line.get("logger", "").startswith("gunicorn") for line in lines)  # gunicorn's own log: JSON too
    assert "Traceback" not in log


def test_the_sample_grafana_dashboard_reads_only_series_we_expose(client, fake_redis):  # noqa: F811
    import json
    import re

    from app import metrics

    jobs.enqueue(failing_job, queue="low")
    add_row()
    client.get("/healthz")
    metrics.job_finished("test", "failed")
    metrics.delivery_outcome("test", "retry")
    metrics.delivery_error("test", 45009)
    exposed = {name for name, _ in scrape(client)}
    exposed |= {re.sub(r"_(bucket|count|sum)$", "", name) for name in exposed}
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\b((?:flask|dinghuo)_[a-z_]+)\{", expr)}
    assert used and used <= exposed, used - exposed
    assert len(used) >= 9
