"""Delivering outbox rows through their channels: relay, claim, send, record, retry, sweep.

Life of a row (`Outbox.status`):

    pending --claim--> sending --sent--> sent
       ^                  |--transient failure (tries left)--> pending (next_attempt_at = back-off)
       |                  |--rate limited / held back ---------> pending (next_attempt_at >= 60 s / window)
       |                  `--permanent failure, tries used up--> failed (last_errcode, last_errmsg)
       `---- sweep: a `sending` row whose lease expired (its worker died) ----'

* The relay (`relay_committed`, hooked to the session's after_commit in
  app.notify.service) enqueues one `deliver` job per row the transaction wrote. With
  Redis down the rows simply stay pending; with no REDIS_URL they are delivered right
  after the commit, in-process.
* `deliver(outbox_id)` claims the row with one conditional UPDATE (pending and due ->
  sending, lease until now + OUTBOX_LEASE_SECONDS), so two jobs for one row send once.
  The outcome is recorded only while the claim is still ours (`updated_at` is the
  claim's fencing token).
* `sweep()` runs every OUTBOX_SWEEP_SECONDS on RQ's scheduler: rows a worker left in
  `sending` past their lease go back to pending (the interrupted try counts), and rows
  pending and due for a whole sweep interval are enqueued again (when their queue has
  no backlog in which their jobs could still be waiting).

Delivery is at-least-once: a worker killed after WeChat accepted a message but before
the row was marked sent resends it. WeCom app messages carry `enable_duplicate_check`,
so WeCom drops that resend; subscribe messages have no such check (see docs/ops/queues.md).
"""
import contextlib
import logging
import math
import threading
import time
import uuid
from collections import deque
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, create_engine, event, select, update

from app import jobs, metrics
from app.extensions import db
from app.kernel import correlation
from app.kernel.clock import utcnow
from app.kernel.errors import DeliveryError
from app.notify import channels
from app.notify.models import Outbox

log = logging.getLogger(__name__)
delivery_log = logging.getLogger("dinghuo.delivery")

# One run of `deliver`: at most two gateway calls (a token refresh and the send), each
# bounded by WECHAT_HTTP_TIMEOUT. OUTBOX_LEASE_SECONDS must stay above this.
DELIVER_TIMEOUT = 60
# Transient failures (network, timeout, HTTP 5xx, -1): tries in total before `failed`.
MAX_TRIES = 3
# After a rate-limited DeliveryError (WeChat's 45009...): wait at least this long. Not
# counted as a try; a row still rate limited MAX_AGE after it was written fails.
RATE_LIMITED_WAIT_SECONDS = 60
MAX_AGE = timedelta(hours=24)
# Rows the sweep enqueues per run; the next run takes the rest.
SWEEP_BATCH = 10_000
# In-process mode: due rows retried after each relay, so a request stays short.
INPROCESS_DUE_BATCH = 20

outbox = Outbox.__table__


# --- relay ------------------------------------------------------------------------------

def relay_committed(items):
    """Start delivery of the outbox rows a transaction just committed.

    `items` are `(queue, outbox_id)` pairs. Never raises: the transaction that wrote the
    rows has committed, and a row that could not be handed on stays pending for the sweep.
    """
    if not items:
        return
    if current_app.config.get("REDIS_URL"):
        try:
            jobs.enqueue_each(deliver, [(queue, (outbox_id,)) for queue, outbox_id in items],
                              timeout=DELIVER_TIMEOUT, result_ttl=0)
        except Exception as exc:  # redis.ConnectionError/TimeoutError, or anything else
            log.warning("could not enqueue %d outbox row(s) (%s); they stay pending for the sweep",
                        len(items), exc.__class__.__name__)
        return
    if not current_app.config.get("OUTBOX_DELIVER_INPROCESS", True):
        return  # left pending for `flask notify sweep`
    # No Redis (the embedded default): deliver now, in the committing thread. There is no
    # queue or scheduler to hand rows to, and a background thread could outlive its app;
    # rows waiting for a retry are picked up after the next commit or by `flask notify sweep`.
    # After a transient failure (WeChat slow or unreachable) the rest wait too, so one
    # request never spends more than one timeout on WeChat.
    try:
        for _, outbox_id in items:
            if deliver(outbox_id) == "retry":
                return
        deliver_due(limit=INPROCESS_DUE_BATCH)
    except Exception:
        log.exception("in-process delivery failed; the rows stay pending for the sweep")


def enqueue_rows(items):
    """Hand `(queue, outbox_id)` pairs to RQ, or deliver in-process without Redis."""
    if not current_app.config.get("REDIS_URL"):
        for _, outbox_id in items:
            deliver(outbox_id)
        return
    jobs.enqueue_each(deliver, [(queue, (outbox_id,)) for queue, outbox_id in items],
                      timeout=DELIVER_TIMEOUT, result_ttl=0)


def _schedule_retry(row, seconds):
    """Book the row's next try on RQ's scheduler; the sweep is the fallback."""
    if not current_app.config.get("REDIS_URL"):
        return
    # RQ's scheduler keeps whole seconds (truncated): book a second later, or the job could
    # run just before next_attempt_at, find the row not yet due and leave it to the sweep.
    try:
        jobs.enqueue_in(math.ceil(seconds) + 1, deliver, row.id, queue=row.queue, timeout=DELIVER_TIMEOUT,
                        result_ttl=0)
    except Exception as exc:
        log.warning("could not schedule retry of outbox row %s (%s); the sweep will", row.id,
                    exc.__class__.__name__)


# --- the job ------------------------------------------------------------------------------

def deliver(outbox_id):
    """Deliver one outbox row (the RQ job; safe to run twice or in two workers at once).

    Returns what happened: "sent", "retry", "held", "failed", or "skipped" when the row
    is not pending and due (already sent, failed, being sent, or waiting for a retry).
    Runs under the request id that wrote the row and logs one line per attempt.
    """
    config = current_app.config
    now = utcnow()
    row = _claim(outbox_id, now, config["OUTBOX_LEASE_SECONDS"])
    if row is None:
        return "skipped"
    with correlation.bound(row.request_id):
        outcome, error = _attempt(row, now, config)
        metrics.delivery_outcome(row.channel, outcome)
        fields = {"outbox_id": row.id, "channel": row.channel, "outcome": outcome, "attempts": row.attempts + 1}
        if error is not None:
            metrics.delivery_error(row.channel, error.errcode)
            fields.update(errcode=error.errcode, errmsg=_trim(error.errmsg))
        delivery_log.log(logging.WARNING if outcome == "failed" else logging.INFO, "outbox row %s %s",
                         row.id, outcome, extra={"fields": fields})
    return outcome


def _attempt(row, claim, config):
    """One try at sending the claimed row: (outcome, the DeliveryError or None)."""
    try:
        channel = channels.get(row.channel)
        limit = channel.rate_limit
        if limit is not None:
            wait = rate_limiter().acquire(f"{row.channel}:{row.recipient}", *limit)
            if wait > 0:  # held back, not failed: the recipient's window is full
                _record(row, claim, status="pending", next_attempt_at=utcnow() + timedelta(seconds=wait))
                _schedule_retry(row, wait)
                return "held", None
        channel.send(config, row)
    except DeliveryError as exc:
        if exc.rate_limited:
            return _after_rate_limit(row, claim, exc), exc
        if exc.permanent:
            return _fail(row, claim, exc.errcode, exc.errmsg), exc
        return _after_transient(row, claim, exc.errcode, exc.errmsg, config), exc
    except Exception as exc:  # Redis gone, a job timeout, a bug: retry like a transient failure
        log.exception("delivering outbox row %s raised", row.id)
        return _after_transient(row, claim, None, f"内部错误：{exc.__class__.__name__}", config), None
    _record(row, claim, status="sent", sent_at=utcnow(), last_errcode=None, last_errmsg=None)
    return "sent", None


def _delivery_engine():
    """Where claims and outcomes are written: one statement, one round trip each.

    On PostgreSQL a small engine of its own: autocommit (a single UPDATE is atomic) and
    synchronous_commit off, so a commit does not wait for the WAL flush. A crash of
    PostgreSQL itself may then forget the last fraction of a second of claims and
    outcomes; a forgotten claim or "sent" only means the row is sent again, as after a
    worker killed mid-delivery (at-least-once). The outbox rows themselves are written by
    the business transaction, fully durable. Elsewhere (SQLite) the app's engine.
    """
    engine = db.engine
    if engine.dialect.name != "postgresql":
        return engine
    cached = current_app.extensions.get("dinghuo_delivery_engine")
    if cached is None or cached[0] is not engine:
        fast = create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_size=2, max_overflow=8)

        @event.listens_for(fast, "connect")
        def _no_flush_wait(dbapi_connection, _record):
            with dbapi_connection.cursor() as cur:
                cur.execute("SET synchronous_commit TO off")
            dbapi_connection.commit()

        cached = current_app.extensions["dinghuo_delivery_engine"] = (engine, fast)
    return cached[1]


@contextlib.contextmanager
def _delivery_transaction():
    """A connection for one claim or outcome statement (see `_delivery_engine`)."""
    with _delivery_engine().begin() as conn:
        yield conn


# Built once: every delivery runs these two (the other outcomes are rare and built per call).
_CLAIM = (
    update(outbox)
    .where(outbox.c.id == bindparam("oid"), outbox.c.status == "pending",
           outbox.c.next_attempt_at <= bindparam("now"))
    .values(status="sending", next_attempt_at=bindparam("lease_until"), updated_at=bindparam("now"))
    .returning(outbox.c.id, outbox.c.queue, outbox.c.channel, outbox.c.recipient, outbox.c.payload,
               outbox.c.attempts, outbox.c.created_at, outbox.c.request_id)
)
_OURS = (outbox.c.id == bindparam("oid")) & (outbox.c.status == "sending") & (outbox.c.updated_at == bindparam("claim"))
_MARK_SENT = update(outbox).where(_OURS).values(
    status="sent", sent_at=bindparam("at"), updated_at=bindparam("at"), last_errcode=None, last_errmsg=None)


def _claim(outbox_id, now, lease_seconds):
    """pending and due -> sending, atomically; None when someone else has it or it is not due."""
    params = {"oid": outbox_id, "now": now, "lease_until": now + timedelta(seconds=lease_seconds)}
    with _delivery_transaction() as conn:
        return conn.execute(_CLAIM, params).first()


def _record(row, claim, **values):
    """Write the outcome, only while the row is still ours (status sending, our claim time)."""
    if values.get("status") == "sent":
        stmt, params = _MARK_SENT, {"oid": row.id, "claim": claim, "at": values["sent_at"]}
    else:
        values.setdefault("updated_at", utcnow())
        stmt, params = update(outbox).where(_OURS).values(**values), {"oid": row.id, "claim": claim}
    with _delivery_transaction() as conn:
        if conn.execute(stmt, params).rowcount != 1:
            log.warning("outbox row %s was taken back (lease expired) before its outcome was recorded", row.id)
            return False
    return True


def _fail(row, claim, errcode, errmsg):
    values = {"status": "failed", "attempts": row.attempts + 1, "last_errcode": errcode,
              "last_errmsg": _trim(errmsg)}
    try:
        after = channels.get(row.channel).after_permanent_failure
    except DeliveryError:  # an unknown channel
        after = None
    if after is None:
        _record(row, claim, **values)
        return "failed"
    with db.engine.begin() as conn:  # the outcome and the channel's follow-up: one transaction
        done = conn.execute(update(outbox).where(_OURS).values(updated_at=utcnow(), **values),
                            {"oid": row.id, "claim": claim}).rowcount
        if done:
            after(conn, row, errcode)
    return "failed"


def _after_transient(row, claim, errcode, errmsg, config):
    attempts = row.attempts + 1
    if attempts >= MAX_TRIES:
        _record(row, claim, status="failed", attempts=attempts, last_errcode=errcode, last_errmsg=_trim(errmsg))
        return "failed"
    wait = config["OUTBOX_RETRY_BASE_SECONDS"] * 2 ** (attempts - 1)
    if _record(row, claim, status="pending", attempts=attempts, last_errcode=errcode, last_errmsg=_trim(errmsg),
               next_attempt_at=utcnow() + timedelta(seconds=wait)):
        _schedule_retry(row, wait)
    return "retry"


def _after_rate_limit(row, claim, exc):
    now = utcnow()
    if now - row.created_at > MAX_AGE:
        _record(row, claim, status="failed", last_errcode=exc.errcode, last_errmsg=_trim(exc.errmsg))
        return "failed"
    if _record(row, claim, status="pending", last_errcode=exc.errcode, last_errmsg=_trim(exc.errmsg),
               next_attempt_at=now + timedelta(seconds=RATE_LIMITED_WAIT_SECONDS)):
        _schedule_retry(row, RATE_LIMITED_WAIT_SECONDS)
    return "retry"


def _trim(text):
    return None if text is None else str(text)[:500]


# --- per-recipient rate limits ------------------------------------------------------------

# KEYS[1] = the recipient's window; ARGV = limit, window seconds, a unique member.
# Returns 0 when a slot was taken, else the seconds until the oldest slot frees up.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
    redis.call('ZADD', KEYS[1], now, ARGV[3])
    redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
    return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""


class RedisRateLimiter:
    """A sliding window per key in Redis, shared by every worker (Redis's clock)."""

    def __init__(self, connection, prefix="dinghuo:ratelimit:"):
        self._script = connection.register_script(_SLIDING_WINDOW)
        self._prefix = prefix

    def acquire(self, key, limit, window):
        """Take a slot: 0 when allowed now, else seconds to wait (nothing taken)."""
        wait = float(self._script(keys=[self._prefix + key], args=[limit, window, uuid.uuid4().hex]))
        return 0 if wait <= 0 else wait + 0.05


class LocalRateLimiter:
    """The same sliding window in this process (no Redis: one process delivers)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._windows = {}

    def acquire(self, key, limit, window):
        now = time.monotonic()
        with self._lock:
            stamps = self._windows.setdefault(key, deque())
            while stamps and stamps[0] <= now - window:
                stamps.popleft()
            if len(stamps) < limit:
                stamps.append(now)
                return 0
            return stamps[0] + window - now + 0.05


def rate_limiter():
    """The app's limiter: Redis-backed (shared by every process) or, without Redis, its own
    in-process counter (one per app, so separate apps in one process never share windows)."""
    limiter = current_app.extensions.get("dinghuo_rate_limiter")
    if limiter is None:
        connection = jobs.redis_connection()
        limiter = LocalRateLimiter() if connection is None else RedisRateLimiter(connection)
        limiter = current_app.extensions.setdefault("dinghuo_rate_limiter", limiter)
    return limiter


# --- sweep, due rows, operator actions ----------------------------------------------------

def sweep(grace_seconds=None):
    """Take back expired leases and enqueue rows left pending; returns counts.

    A `sending` row past its lease lost its worker: it goes back to pending (the
    interrupted try counts; the third fails it) and is enqueued. A pending row counts as
    left behind when it has been due for `grace_seconds` (default: one sweep interval) and
    its queue has no jobs waiting: while a queue has a backlog its rows' jobs are most
    likely still in it, and enqueueing them again would only double the backlog (a
    duplicate job is harmless, the claim sends once, but it costs a worker's time).
    """
    config = current_app.config
    grace = config["OUTBOX_SWEEP_SECONDS"] if grace_seconds is None else grace_seconds
    now = utcnow()
    expired = (outbox.c.status == "sending") & (outbox.c.next_attempt_at < now)
    note = "投递中断（worker 退出或超时），已重新排队"
    with db.engine.begin() as conn:
        gave_up = conn.execute(
            update(outbox).where(expired, outbox.c.attempts + 1 >= MAX_TRIES)
            .values(status="failed", attempts=outbox.c.attempts + 1, updated_at=now,
                    last_errmsg=f"投递中断（worker 退出或超时）已达 {MAX_TRIES} 次，不再重试")
        ).rowcount
        reclaimed = [tuple(r) for r in conn.execute(
            update(outbox).where(expired)
            .values(status="pending", attempts=outbox.c.attempts + 1, next_attempt_at=now, last_errmsg=note,
                    updated_at=now)
            .returning(outbox.c.queue, outbox.c.id)
        )]
    idle_queues = _idle_queues()
    due = []
    if idle_queues:
        with db.engine.connect() as conn:
            due = [tuple(r) for r in conn.execute(
                select(outbox.c.queue, outbox.c.id)
                .where(outbox.c.status == "pending", outbox.c.queue.in_(idle_queues),
                       outbox.c.next_attempt_at <= now - timedelta(seconds=grace))
                .order_by(outbox.c.id).limit(SWEEP_BATCH)
            )]
    taken_back = {outbox_id for _, outbox_id in reclaimed}
    items = reclaimed + [item for item in due if item[1] not in taken_back]
    if items:
        enqueue_rows(items)
    result = {"reclaimed": len(reclaimed), "failed": gave_up, "enqueued": len(items)}
    if reclaimed or gave_up or items:
        log.info("outbox sweep: %s", result)
    return result


def _idle_queues():
    """Queues with no jobs waiting (all of them in-process, where there is no queue)."""
    connection = jobs.redis_connection()
    if connection is None:
        return list(jobs.QUEUE_NAMES)
    from rq import Queue

    return [name for name in jobs.QUEUE_NAMES if Queue(name, connection=connection).count == 0]


def deliver_due(limit=INPROCESS_DUE_BATCH):
    """In-process: deliver rows pending and due now (retries, rows held back)."""
    with db.engine.connect() as conn:
        ids = conn.execute(
            select(outbox.c.id).where(outbox.c.status == "pending", outbox.c.next_attempt_at <= utcnow())
            .order_by(outbox.c.id).limit(limit)
        ).scalars().all()
    for outbox_id in ids:
        if deliver(outbox_id) == "retry":
            break
    return len(ids)


def failed_rows(limit=100):
    """The most recent failed deliveries, newest first."""
    with db.engine.connect() as conn:
        return conn.execute(
            select(outbox).where(outbox.c.status == "failed").order_by(outbox.c.id.desc()).limit(limit)
        ).all()


def retry_failed(outbox_ids=None):
    """Put failed rows (all when `outbox_ids` is None) back to pending and enqueue them.

    Returns the ids requeued. Their tries start again from zero; the last error stays
    visible until the next outcome replaces it.
    """
    now = utcnow()
    stmt = update(outbox).where(outbox.c.status == "failed")
    if outbox_ids is not None:
        stmt = stmt.where(outbox.c.id.in_(list(outbox_ids)))
    stmt = stmt.values(status="pending", attempts=0, next_attempt_at=now, updated_at=now).returning(
        outbox.c.queue, outbox.c.id)
    with db.engine.begin() as conn:
        items = [(queue, outbox_id) for queue, outbox_id in conn.execute(stmt)]
    if items:
        try:
            enqueue_rows(items)
        except Exception as exc:
            log.warning("could not enqueue %d requeued row(s) (%s); the sweep will", len(items),
                        exc.__class__.__name__)
    return sorted(outbox_id for _, outbox_id in items)
