"""Probes, cheap enough to poll every second.

* `GET /healthz` — liveness: the process is up and answers; no I/O. Restart it when this fails.
* `GET /readyz` — readiness: the database answers and its schema is at the migrations' head,
  and Redis answers (when REDIS_URL is set). Take the process out of the load balancer
  while this is 503; `checks` says which part failed.

One database round trip (reading `alembic_version` is also the connectivity check) and
one Redis PING on a client kept per app with 1-second timeouts.
"""
import time

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.extensions import db

bp = Blueprint("health", __name__)

_HEADS_KEY = "dinghuo_migration_heads"
_REDIS_KEY = "dinghuo_health_redis"


def _migration_heads():
    """The revisions the code expects (read once per process from migrations/)."""
    heads = current_app.extensions.get(_HEADS_KEY)
    if heads is None:
        from alembic.script import ScriptDirectory

        config = current_app.extensions["migrate"].migrate.get_config()
        heads = current_app.extensions[_HEADS_KEY] = frozenset(ScriptDirectory.from_config(config).get_heads())
    return heads


def _check_database():
    """Reachable, and at the migrations' head: one query."""
    started = time.perf_counter()
    try:
        current = set(db.session.execute(text("SELECT version_num FROM alembic_version")).scalars())
        db.session.rollback()
    except Exception as exc:  # any failure means "not reachable" (or never migrated); say which kind
        db.session.rollback()
        return ({"ok": False, "error": type(exc).__name__},
                {"ok": False, "error": "无法读取迁移版本（数据库不可达或尚未迁移）"})
    ms = round((time.perf_counter() - started) * 1000, 1)
    heads = _migration_heads()
    migrations = {"ok": current == heads, "current": sorted(current), "head": sorted(heads)}
    if not migrations["ok"]:
        migrations["error"] = "数据库未迁移到最新版本：请运行 flask --app wsgi db upgrade"
    return {"ok": True, "backend": db.engine.dialect.name, "ms": ms}, migrations


def _check_queue():
    url = current_app.config.get("REDIS_URL")
    if not url:
        return {"ok": True, "backend": "in-process"}
    import redis

    client = current_app.extensions.get(_REDIS_KEY)
    if client is None or client[0] != url:
        client = current_app.extensions[_REDIS_KEY] = (
            url, redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1))
    started = time.perf_counter()
    try:
        client[1].ping()
    except redis.RedisError as exc:
        return {"ok": False, "backend": "redis", "error": type(exc).__name__}
    return {"ok": True, "backend": "redis", "ms": round((time.perf_counter() - started) * 1000, 1)}


@bp.get("/healthz")
def healthz():
    """The process is up (no database, no Redis: those are /readyz)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    database, migrations = _check_database()
    checks = {"database": database, "migrations": migrations, "queue": _check_queue()}
    ok = all(c["ok"] for c in checks.values())
    resp = jsonify({"status": "ok" if ok else "degraded", "checks": checks})
    resp.status_code = 200 if ok else 503
    resp.headers["Cache-Control"] = "no-store"
    return resp
