"""gunicorn settings for Dinghuo's web processes: `gunicorn -c gunicorn.conf.py wsgi:app`.

Every value can be changed by environment variable (docs/production.md 「Web 进程」):

  GUNICORN_BIND             where to listen (default 127.0.0.1:8000: behind the reverse proxy)
  WEB_CONCURRENCY           worker processes (default: the CPU count, at least 2)
  GUNICORN_TIMEOUT          seconds a request may take before its worker is replaced (30)
  GUNICORN_ACCESS_LOG       1: also write gunicorn's own access line (JSON); the app already
                            writes one JSON line per request (logger dinghuo.request)
  PROMETHEUS_MULTIPROC_DIR  where the workers keep their metrics (default below); emptied
                            when gunicorn starts, a dead worker's gauges dropped by child_exit

Sync workers: on 2 cores they beat gthread (docs/capacity figures in the design notes).
"""
import multiprocessing
import os
import shutil
import tempfile

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, multiprocessing.cpu_count()))
worker_class = "sync"
# A request that runs longer than this is killed (its worker is replaced); WeChat calls are
# bounded by WECHAT_HTTP_TIMEOUT well below it.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5  # the reverse proxy keeps connections open to us
# Recycle workers now and then, so a slow leak never grows without bound.
max_requests = 5000
max_requests_jitter = 500
# The app is imported in each worker after the fork (no preload): each worker opens its own
# database pool and writes its own metrics files.
preload_app = False
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# --- metrics: prometheus_client's multi-process mode -------------------------------------
# Must be in the environment before any worker imports prometheus_client (the app does).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                      os.path.join(tempfile.gettempdir(), f"dinghuo-metrics-{bind.replace(':', '-')}"))


def on_starting(server):
    """Start with an empty metrics directory: files of a previous run would be added up."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    """A worker exited: drop its live gauges (its counters stay, so totals never go back)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# --- logs: JSON lines on stderr ------------------------------------------------------------
# The app installs its own root handler (app.logs); this only makes gunicorn's loggers speak
# JSON through the same formatter and redacting filter.
access_log_format = (
    '{"logger": "gunicorn.access", "remote_addr": "%(h)s", "method": "%(m)s", "path": "%(U)s", '
    '"status": %(s)s, "bytes": "%(B)s", "duration_ms": %(M)s, "request_id": "%({x-request-id}o)s", '
    '"user_agent": "%(a)s"}'
)
_access = os.environ.get("GUNICORN_ACCESS_LOG") == "1"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": []},  # app.logs.configure adds the root handler
    "filters": {"redact": {"()": "app.logs.RedactingFilter"}},
    "formatters": {
        "json": {"()": "app.logs.JsonFormatter"},
        "raw": {"format": "%(message)s"},  # access_log_format is JSON already
    },
    "handlers": {
        "error_json": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact"],
                       "stream": "ext://sys.stderr"},
        "access_json": {"class": "logging.StreamHandler", "formatter": "raw", "filters": ["redact"],
                        "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_json"], "propagate": False,
                           "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO" if _access else "CRITICAL",
                            "handlers": ["access_json"] if _access else [], "propagate": False,
                            "qualname": "gunicorn.access"},
    },
}
