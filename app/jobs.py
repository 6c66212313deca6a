"""Background jobs on RQ, or in-process when no REDIS_URL is configured (the embedded default).

Job functions are module-level functions (RQ imports them by name) that run inside an
app context; `flask --app wsgi rq worker` provides it for RQ workers (`AppContextWorker`).

Periodic jobs live in one table (`PERIODIC_JOBS`) and run on RQ's scheduler: every
worker started with the scheduler books the next run, and each run books the one after.
"""
import importlib
import logging
import time
from datetime import datetime, timedelta, timezone

from flask import current_app

from app import logs
from app.kernel import correlation

log = logging.getLogger(__name__)

QUEUE_NAMES = ("high", "default", "low")

DAY = 86400
# name -> (dotted function, interval: seconds or the config key holding them, job timeout in
# seconds, queue). Runs fall on multiples of the interval since the epoch, so the daily jobs
# run at 00:00 UTC = 08:00 China time.
PERIODIC_JOBS = {
    "outbox-sweep": ("app.notify.delivery.sweep", "OUTBOX_SWEEP_SECONDS", 300, "high"),
    "daily-digest": ("bots.digest.send_daily_digest", DAY, 120, "low"),
    "inactive-dealers": ("bots.rep_alerts.remind_inactive_dealers", DAY, 300, "low"),
    "forget-inbound": ("bots.callback.forget_old_inbound_events", DAY, 120, "low"),
    "auto-complete-orders": ("app.orders.closing.auto_complete_orders", DAY, 600, "low"),
    "wechatpay-reconcile": ("app.funds.refunds.reconcile_wechatpay", 600, 300, "default"),
    # Daily: closes each rebate rule's month/quarter/year that just ended (once; see app.rebates.closing).
    "rebates-close": ("app.rebates.closing.close_due_periods", DAY, 1800, "low"),
    # Hourly, acting once last month is over in China (+30 min): early on the 1st (≈01:00
    # China time); later runs find every statement issued and only read.
    "monthly-statements": ("app.statements.service.issue_due_statements", 3600, 1800, "low"),
    "campaigns-tick": ("app.campaigns.jobs.tick", "CAMPAIGN_TICK_SECONDS", 600, "low"),
    "customer-groups-sync": ("app.campaigns.jobs.sync_all_groups", DAY, 600, "low"),
    "publish-due-policies": ("app.policies.authoring.publish_due_policies", 60, 300, "default"),
    # Kuaidi100 subscriptions that failed get another round (app.tracking.subscriptions).
    "tracking-resubscribe": ("app.tracking.subscriptions.retry_failed_subscriptions", 1800, 300, "default"),
}

_EXTENSION_KEY = "dinghuo_redis"


def redis_connection(app=None):
    """The app's Redis client (one connection pool per app), or None without REDIS_URL.

    Short connect/read timeouts: a request that enqueues after its commit must not hang
    when Redis is down (the caller logs and the outbox sweep delivers later).
    """
    app = app or current_app._get_current_object()
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    conn = app.extensions.get(_EXTENSION_KEY)
    if conn is None:
        import redis

        conn = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30)
        app.extensions[_EXTENSION_KEY] = conn
    return conn


def _queue(name, connection):
    from rq import Queue

    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=connection)


def enqueue(func, *args, queue="default", job_id=None, timeout=30, result_ttl=None, retry_intervals=None):
    """Run `func(*args)` as a job on `queue`; `timeout` (seconds) bounds one run.

    `retry_intervals` (seconds, e.g. (5, 30, 60)) lets RQ run a failed job again that many
    times; only for jobs that are safe to repeat. In-process the job runs once, inline.
    """
    if queue not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {queue!r}")
    connection = redis_connection()
    if connection is None:
        with logs.job_scope(_func_name(func), queue=queue):
            return func(*args)
    retry = None
    if retry_intervals:
        from rq import Retry

        retry = Retry(max=len(retry_intervals), interval=list(retry_intervals))
    return _queue(queue, connection).enqueue(
        func, *args, job_id=job_id, job_timeout=timeout, result_ttl=result_ttl, retry=retry, meta=_meta()
    )


def enqueue_in(seconds, func, *args, queue="default", timeout=30, result_ttl=None):
    """Schedule `func(*args)` on `queue` no sooner than `seconds` from now (RQ's scheduler).

    Returns the job, or None without Redis: in-process there is no scheduler, so the
    caller must leave the work findable (the outbox sweep re-runs due rows).
    """
    connection = redis_connection()
    if connection is None:
        return None
    return _queue(queue, connection).enqueue_in(
        timedelta(seconds=max(0, seconds)), func, *args, job_timeout=timeout, result_ttl=result_ttl, meta=_meta()
    )


def enqueue_each(func, items, *, timeout=30, result_ttl=None):
    """Enqueue `func(*args)` for each `(queue, args)` in one Redis round trip.

    Raises redis.RedisError when Redis cannot be reached (nothing is enqueued then).
    """
    from rq import Queue

    connection = redis_connection()
    by_queue = {}
    for queue, args in items:
        by_queue.setdefault(queue, []).append(
            Queue.prepare_data(func, args=args, timeout=timeout, result_ttl=result_ttl, meta=_meta())
        )
    with connection.pipeline() as pipe:
        for queue, datas in by_queue.items():
            _queue(queue, connection).enqueue_many(datas, pipeline=pipe)
        pipe.execute()


def _meta():
    """What a job carries from the work that enqueued it: the request id (app.logs)."""
    request_id = correlation.current()
    return {"request_id": request_id} if request_id else None


def _func_name(func):
    return func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"


# --- periodic jobs ------------------------------------------------------------------------

def _import(dotted):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def schedule_periodic(name, queue=None, connection=None):
    """Book the next run of periodic job `name` on RQ's scheduler, once for all workers.

    Runs fall on multiples of the interval; the job id names the slot, so however many
    workers start (or a run books its successor while a worker starts) there is one job
    per slot (`unique=True` refuses the second).
    """
    from rq.exceptions import DuplicateJobError

    _, interval, timeout, default_queue = PERIODIC_JOBS[name]
    if isinstance(interval, str):
        interval = current_app.config[interval]
    interval = max(1, int(interval))
    queue = queue or default_queue
    connection = connection or redis_connection()
    slot = int(time.time() // interval) + 1
    at = datetime.fromtimestamp(slot * interval, timezone.utc)
    try:
        return _queue(queue, connection).enqueue_at(
            at, run_periodic, name, job_id=f"dinghuo-periodic-{name}-{slot}", unique=True,
            job_timeout=timeout, result_ttl=interval * 2,
        )
    except DuplicateJobError:
        return None


def run_periodic(name):
    """The job RQ's scheduler runs for a periodic job: do the work, then book the next run."""
    from rq import get_current_job

    dotted = PERIODIC_JOBS[name][0]
    try:
        return _import(dotted)()
    finally:
        job = get_current_job()
        try:
            schedule_periodic(name, queue=job.origin if job else None)
        except Exception:
            log.exception("could not book the next run of periodic job %s", name)


# --- workers --------------------------------------------------------------------------------

def worker_class(kind):
    """An RQ worker class whose jobs run inside the Flask app context.

    `simple` runs jobs in the worker process (RQ's SimpleWorker); `fork` forks a work
    horse per job (RQ's default Worker, ~15 ms a job on these machines; see bench/notify.py).
    """
    from rq import SimpleWorker, Worker

    base = {"simple": SimpleWorker, "fork": Worker}[kind]

    class AppContextWorker(base):
        flask_app = None

        def perform_job(self, job, queue, execution):
            if self._is_horse:
                # A forked horse must not share the parent's pooled database sockets.
                from app.extensions import db

                with self.flask_app.app_context():
                    db.engine.dispose(close=False)
            with self.flask_app.app_context(), logs.job_scope(
                    job.func_name, queue=job.origin, job_id=job.id,
                    request_id=(job.meta or {}).get("request_id")) as outcome:
                self._dinghuo_error = None
                done = super().perform_job(job, queue, execution)
                if not done:
                    outcome["status"], outcome["error"] = "failed", self._dinghuo_error
                return done

        def handle_exception(self, job, *exc_info):
            self._dinghuo_error = exc_info[0].__name__ if exc_info and exc_info[0] else None
            return super().handle_exception(job, *exc_info)

    AppContextWorker.__name__ = f"AppContext{base.__name__}"
    return AppContextWorker


def run_worker(queues, *, kind="simple", burst=False, with_scheduler=True, name=None):
    """Run an RQ worker on `queues` for the current app (blocks until stopped)."""
    app = current_app._get_current_object()
    connection = redis_connection(app)
    if connection is None:
        raise RuntimeError("REDIS_URL is not set")
    cls = worker_class(kind)
    cls.flask_app = app
    queue_objects = [_queue(q, connection) for q in queues]
    for periodic in PERIODIC_JOBS:
        schedule_periodic(periodic, connection=connection)
    worker = cls(queue_objects, connection=connection, name=name)
    return worker.work(burst=burst, with_scheduler=with_scheduler)
