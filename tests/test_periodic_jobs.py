"""The periodic jobs the RQ scheduler runs: each resolves, runs in an app context, and the
daily ones are booked at 08:00 China time on their own queue."""
from datetime import datetime, timezone

import pytest

from app import jobs
from app.extensions import db
from app.notify.models import Outbox


@pytest.mark.parametrize("name", sorted(jobs.PERIODIC_JOBS))
def test_every_periodic_job_resolves_and_runs(app, world, name):
    dotted, interval, timeout, queue = jobs.PERIODIC_JOBS[name]
    assert queue in jobs.QUEUE_NAMES and timeout > 0
    assert isinstance(interval, int) or interval in app.config
    jobs._import(dotted)()  # runs without arguments, as the scheduler calls it


def test_daily_digest_job_writes_one_robot_row_per_day(app, world):
    run = jobs._import(jobs.PERIODIC_JOBS["daily-digest"][0])
    run()
    run()  # a second worker's run of the same slot
    rows = db.session.query(Outbox).filter_by(channel="wecom_robot").all()
    assert len(rows) == 1 and rows[0].queue == "low"


@pytest.mark.postgres
@pytest.mark.redis
def test_daily_jobs_are_booked_at_china_eight_am_on_the_low_queue(rq_app):
    import redis
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    conn = redis.Redis.from_url(rq_app.config["REDIS_URL"])
    job = jobs.schedule_periodic("daily-digest", connection=conn)
    assert job is not None and job.origin == "low"
    registry = ScheduledJobRegistry(queue=Queue("low", connection=conn))
    at = registry.get_scheduled_time(job.id)
    at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    assert (at.hour, at.minute) == (0, 0)  # 00:00 UTC = 08:00 Beijing
    assert at > datetime.now(timezone.utc)
