"""Shared by the operations tests: captured JSON log lines, and Redis as fakeredis (the
SQLite suite has no Redis server; RQ, the relay and the gateways' token cache all run on
one in-memory fake)."""
import json
import logging

import fakeredis
import pytest
import redis

from app import logs


class JsonLines(logging.Handler):
    """The lines the production handler would print (redacting filter + JSON formatter), parsed."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.addFilter(logs.RedactingFilter())
        self.setFormatter(logs.JsonFormatter())
        self.raw = []

    def emit(self, record):
        self.raw.append(self.format(record))

    @property
    def lines(self):
        return [json.loads(text) for text in self.raw]

    def of(self, logger):
        return [line for line in self.lines if line["logger"] == logger]


@pytest.fixture
def json_lines():
    handler = JsonLines()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest.fixture
def fake_redis(app, monkeypatch):
    """REDIS_URL set, every Redis client the app builds talking to one fakeredis server."""
    server = fakeredis.FakeServer()
    monkeypatch.setattr(redis.Redis, "from_url", classmethod(lambda cls, url, **kw: fakeredis.FakeRedis(server=server)))
    app.config["REDIS_URL"] = "redis://127.0.0.1:6399/0"
    return fakeredis.FakeRedis(server=server)


def run_worker(app, connection, queues=("high", "default", "low")):
    """Run every job waiting on `queues` in this process, as `flask rq worker --burst` would."""
    from rq import Queue

    from app.jobs import worker_class

    cls = worker_class("simple")
    cls.flask_app = app
    worker = cls([Queue(q, connection=connection) for q in queues], connection=connection)
    worker.work(burst=True, with_scheduler=False)
