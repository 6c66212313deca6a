"""Background jobs on RQ, or in-process when no REDIS_URL is configured (the embedded default).

Job functions are module-level functions (RQ imports them by name) that run inside an
app context; `flask --app wsgi rq worker` provides it for RQ workers.
"""
from flask import current_app

QUEUE_NAMES = ("high", "default", "low")


def enqueue(func, *args, queue="default", job_id=None, timeout=30):
    """Run `func(*args)` as a job on `queue`; `timeout` (seconds) bounds one run."""
    if queue not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {queue!r}")
    redis_url = current_app.config.get("REDIS_URL")
    if not redis_url:
        return func(*args)
    import redis
    from rq import Queue

    connection = redis.Redis.from_url(redis_url)
    return Queue(queue, connection=connection).enqueue(func, *args, job_id=job_id, job_timeout=timeout)
