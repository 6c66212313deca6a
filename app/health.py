"""`GET /healthz`: is the database reachable, is the job queue reachable."""
import time

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.extensions import db

bp = Blueprint("health", __name__)


def _check_database():
    started = time.perf_counter()
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception as exc:  # any failure means "not reachable"; say which kind
        db.session.rollback()
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "backend": db.engine.dialect.name, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _check_queue():
    url = current_app.config.get("REDIS_URL")
    if not url:
        return {"ok": True, "backend": "in-process"}
    import redis

    started = time.perf_counter()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except redis.RedisError as exc:
        return {"ok": False, "backend": "redis", "error": type(exc).__name__}
    return {"ok": True, "backend": "redis", "ms": round((time.perf_counter() - started) * 1000, 1)}


@bp.get("/healthz")
def healthz():
    checks = {"database": _check_database(), "queue": _check_queue()}
    ok = all(c["ok"] for c in checks.values())
    resp = jsonify({"status": "ok" if ok else "degraded", "checks": checks})
    resp.status_code = 200 if ok else 503
    return resp
