"""Prometheus metrics at `GET /metrics` (docs/production.md 「监控指标」 lists every series).

* Requests: `prometheus-flask-exporter` counts and times every request by endpoint
  (`flask_http_request_duration_seconds{method,endpoint,status}`: rate, latency and
  errors per endpoint; `flask_http_request_total{method,status}`).
* Jobs and deliveries: counters incremented where the work happens —
  `dinghuo_jobs_total{queue,status}` (app.logs.job_scope), `dinghuo_outbox_deliveries_total
  {channel,outcome}` and `dinghuo_delivery_errors_total{channel,errcode}` (the WeChat/WeCom
  errcode a delivery failed with, "none" for network/HTTP failures; app.notify.delivery).
* Read at scrape time (one grouped query on the outbox, one Redis pipeline): queue depth,
  started, scheduled and failed jobs per queue; outbox backlog, failed rows and the age of
  the oldest undelivered row per channel.

Under gunicorn set PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py does): every worker process
writes its counters to files there and `/metrics`, served by any worker, adds them up.

Who may read it: addresses in METRICS_ALLOW (default: this host only) reaching the app
directly, or anyone presenting `Authorization: Bearer <METRICS_TOKEN>`. A request that came
through the reverse proxy (X-Forwarded-For / Forwarded present) needs the token.
"""
import hmac
import ipaddress
import logging
import os

from flask import current_app, jsonify, request
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)

_EXTENSION_KEY = "dinghuo_metrics"

# Not registered globally: each app's registry takes them (single process), or the
# multi-process collector reads them from PROMETHEUS_MULTIPROC_DIR.
JOBS = Counter("dinghuo_jobs_total", "Jobs run, by queue and outcome (finished / failed)",
               ("queue", "status"), registry=None)
DELIVERIES = Counter("dinghuo_outbox_deliveries_total",
                     "Outbox delivery attempts by channel and outcome (sent / retry / held / failed / skipped)",
                     ("channel", "outcome"), registry=None)
DELIVERY_ERRORS = Counter("dinghuo_delivery_errors_total",
                          "Deliveries the far side refused or could not take, by channel and errcode "
                          "(WeChat/WeCom errcode; none = network, timeout or HTTP error)",
                          ("channel", "errcode"), registry=None)
_COUNTERS = (JOBS, DELIVERIES, DELIVERY_ERRORS)


def multiprocess():
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


# --- what the code counts ---------------------------------------------------------------------

def job_finished(queue, status):
    JOBS.labels(queue=queue or "inline", status=status).inc()


def delivery_outcome(channel, outcome):
    DELIVERIES.labels(channel=channel, outcome=outcome).inc()


def delivery_error(channel, errcode):
    DELIVERY_ERRORS.labels(channel=channel, errcode="none" if errcode is None else str(errcode)).inc()


# --- read at scrape time ------------------------------------------------------------------------

class ScrapeCollector:
    """Queue and outbox state, read when Prometheus scrapes (cheap: indexed, grouped)."""

    def __init__(self, app):
        self.app = app

    def describe(self):
        return []

    def collect(self):
        up = GaugeMetricFamily("dinghuo_metrics_source_up", "1 when the source could be read for this scrape",
                               labels=("source",))
        try:
            with self.app.app_context():
                yield from self._outbox()
            up.add_metric(["database"], 1)
        except Exception as exc:
            log.warning("metrics: could not read the outbox (%s)", exc.__class__.__name__)
            up.add_metric(["database"], 0)
        if self.app.config.get("REDIS_URL"):
            try:
                with self.app.app_context():
                    yield from self._queues()
                up.add_metric(["redis"], 1)
            except Exception as exc:
                log.warning("metrics: could not read the queues (%s)", exc.__class__.__name__)
                up.add_metric(["redis"], 0)
        yield up

    def _outbox(self):
        from sqlalchemy import func, select

        from app.extensions import db
        from app.kernel.clock import utcnow
        from app.notify import channels
        from app.notify.models import Outbox

        table = Outbox.__table__
        with db.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.channel, table.c.status, func.count(), func.min(table.c.created_at))
                .where(table.c.status.in_(("pending", "sending", "failed")))
                .group_by(table.c.channel, table.c.status)
            ).all()
        backlog = GaugeMetricFamily("dinghuo_outbox_backlog", "Outbox rows not yet delivered, by channel and status",
                                    labels=("channel", "status"))
        failed = GaugeMetricFamily("dinghuo_outbox_failed", "Outbox rows that failed for good (see flask notify failed)",
                                   labels=("channel",))
        oldest = GaugeMetricFamily("dinghuo_outbox_oldest_undelivered_age_seconds",
                                   "Age of the oldest pending or sending outbox row, by channel (0: none)",
                                   labels=("channel",))
        now = utcnow()
        counts, ages = {}, {}
        for channel, status, count, first in rows:
            counts[channel, status] = count
            if status != "failed" and first is not None:
                age = max(0.0, (now - first).total_seconds())
                ages[channel] = max(ages.get(channel, 0.0), age)
        known = set(channels.names(self.app)) | {channel for channel, _ in counts}
        for channel in sorted(known):
            for status in ("pending", "sending"):
                backlog.add_metric([channel, status], counts.get((channel, status), 0))
            failed.add_metric([channel], counts.get((channel, "failed"), 0))
            oldest.add_metric([channel], ages.get(channel, 0.0))
        yield from (backlog, failed, oldest)

    def _queues(self):
        from rq import Queue
        from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

        queues = self.app.extensions[_EXTENSION_KEY]["queues"]
        connection = queues["connection"](self.app)
        families = {
            "depth": GaugeMetricFamily("dinghuo_queue_depth", "Jobs waiting in the RQ queue", labels=("queue",)),
            "started": GaugeMetricFamily("dinghuo_queue_started_jobs", "Jobs being run by a worker", labels=("queue",)),
            "scheduled": GaugeMetricFamily("dinghuo_queue_scheduled_jobs", "Jobs booked for later (retries, periodic)",
                                           labels=("queue",)),
            "failed": GaugeMetricFamily("dinghuo_queue_failed_jobs", "Jobs in the queue's failed registry",
                                        labels=("queue",)),
        }
        with connection.pipeline(transaction=False) as pipe:
            for name in queues["names"]:
                queue = Queue(name, connection=connection)
                pipe.llen(queue.key)
                for registry in (StartedJobRegistry, ScheduledJobRegistry, FailedJobRegistry):
                    pipe.zcard(registry(name, connection=connection).key)
            results = pipe.execute()
        for i, name in enumerate(queues["names"]):
            depth, started, scheduled, failed = results[4 * i:4 * i + 4]
            families["depth"].add_metric([name], depth)
            families["started"].add_metric([name], started)
            families["scheduled"].add_metric([name], scheduled)
            families["failed"].add_metric([name], failed)
        yield from families.values()


# --- wiring ---------------------------------------------------------------------------------------

def init_app(app, *, queue_names, queue_connection):
    """Count and time every request, and serve `/metrics` (protected, see the module doc).
    The job queues (`app.jobs`) are named by `queue_names`; `queue_connection(app)` answers
    their Redis client, or None."""
    from prometheus_flask_exporter import PrometheusMetrics

    registry = CollectorRegistry(auto_describe=True)
    exporter = PrometheusMetrics(app, path=None, registry=registry, group_by="endpoint",
                                 excluded_paths=["/metrics$"])
    if not multiprocess():
        for counter in _COUNTERS:
            registry.register(counter)
        registry.register(ScrapeCollector(app))
    app.extensions[_EXTENSION_KEY] = {"registry": registry, "exporter": exporter, "queues": {"names": queue_names, "connection": queue_connection},
                                      "allow": _networks(app.config.get("METRICS_ALLOW"))}
    app.add_url_rule("/metrics", "metrics", _metrics_view)
    return exporter


def _networks(spec):
    if isinstance(spec, (list, tuple)):
        items = spec
    else:
        items = [part.strip() for part in (spec or "").split(",")]
    return tuple(ipaddress.ip_network(item, strict=False) for item in items if item)


def _allowed():
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    if request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"):
        return False  # came through the reverse proxy: from the internet, as far as we know
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in current_app.extensions[_EXTENSION_KEY]["allow"])


def _metrics_view():
    if not _allowed():
        resp = jsonify({"error": {"code": "forbidden", "message": "无权读取监控指标", "details": {}}})
        resp.status_code = 403
        return resp
    state = current_app.extensions[_EXTENSION_KEY]
    if multiprocess():
        from prometheus_client import multiprocess as pc_multiprocess

        registry = CollectorRegistry()
        pc_multiprocess.MultiProcessCollector(registry)
        registry.register(ScrapeCollector(current_app._get_current_object()))
    else:
        registry = state["registry"]
    encoder, content_type = choose_encoder(request.headers.get("Accept"))
    return encoder(registry), 200, {"Content-Type": content_type, "Cache-Control": "no-store"}
