"""Logs: one JSON line per request, per job and per delivery, each with the request id.

* `configure(app)` installs one handler on the root logger: JSON lines (`LOG_FORMAT=json`,
  the production default) or readable text (`text`, the development default). Every
  record passes the `RedactingFilter` first, and every line carries the current request id
  (`app.kernel.correlation`).
* `init_app(app)` binds a request id to each request (a sane incoming `X-Request-ID`, or a
  fresh one), returns it in the `X-Request-ID` response header and writes the request's
  line (`dinghuo.request`) when it ends.
* `job_scope(...)` wraps one job run: binds the request id the job carries and writes the
  job's line (`dinghuo.job`) with its outcome.

No secret, token or full phone number reaches a log line: `redact` masks `key=value`
pairs and JSON fields with secret-like names, bearer tokens, and Chinese mobile numbers
(kept as 138****5678).
"""
import contextlib
import json
import logging
import re
import sys
import time
from datetime import datetime, timezone

from flask import g, request

from app.kernel import correlation

REQUEST_ID_HEADER = "X-Request-ID"
LOG_FORMATS = ("json", "text")

request_log = logging.getLogger("dinghuo.request")
job_log = logging.getLogger("dinghuo.job")

# Probes and scrapes that succeed are not worth a line a second; their failures are logged.
_QUIET_PATHS = ("/healthz", "/readyz", "/metrics")

# --- redaction ----------------------------------------------------------------------------

_SECRET_NAMES = (
    r"access_token|refresh_token|token|secret|corpsecret|appsecret|app_secret|secret_key|client_secret|"
    r"password|passwd|pwd|api_?key|apiv3_key|key|session_key|js_code|sign|signature|msg_signature|"
    r"encodingaeskey|aes_key|private_key|ticket|authorization|cookie"
)
_REDACTED = "[redacted]"
_PATTERNS = (
    # name=value in URLs, query strings and "k=v" text (value up to a separator).
    (re.compile(rf"(?i)\b({_SECRET_NAMES})=([^&\s\"',;)]+)"), rf"\1={_REDACTED}"),
    # "name": "value" (JSON) and 'name': 'value' (a Python repr).
    (re.compile(rf"(?i)([\"'])({_SECRET_NAMES})\1(\s*:\s*)([\"'])(.*?)(?<!\\)\4"), rf"\1\2\1\3\4{_REDACTED}\4"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), f"Bearer {_REDACTED}"),
    # A mainland mobile number (optionally +86): keep the first three and last four digits.
    (re.compile(r"(?<!\d)((?:\+?86[- ]?)?1[3-9]\d)[- ]?\d{4}[- ]?(\d{4})(?!\d)"), r"\1****\2"),
)


def redact(text):
    """`text` with secrets, tokens and full mobile numbers masked."""
    if not text:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks the message, its arguments and string fields of a record before any handler
    formats it (installed on the root handler by `configure`)."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what there is
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}
        return True


# --- formatters -----------------------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC), level, logger, msg, request_id, the record's
    `fields`, and exc (the traceback, redacted) when there is one."""

    def format(self, record):
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or correlation.current()
        if request_id:
            line["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                line.setdefault(key, value)
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exc"] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The development format: time, level, logger, [request id], message, fields as k=v."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s%(kv)s")

    def format(self, record):
        request_id = getattr(record, "request_id", None) or correlation.current()
        record.rid = f" [{request_id}]" if request_id else ""
        fields = getattr(record, "fields", None)
        record.kv = "".join(f" {k}={v}" for k, v in fields.items()) if isinstance(fields, dict) else ""
        text = super().format(record)
        return redact(text) if record.exc_info or record.exc_text else text


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is written (daemons and test runners swap it)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure(app):
    """Install (once per process) the root handler; a later app may switch its format."""
    fmt = app.config.get("LOG_FORMAT") or "text"
    formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_dinghuo", False)), None)
    if handler is None:
        handler = _StderrHandler()
        handler._dinghuo = True
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    handler.setFormatter(formatter)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    # Alembic announces each autogenerate plugin at import; that is noise in CLI output.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    return handler


# --- requests ---------------------------------------------------------------------------------

def init_app(app):
    """Bind a request id to every request and write one line when it ends. Call before
    any other request hook is registered, so the id is bound first."""
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)


def _start_request():
    request_id = correlation.accept(request.headers.get(REQUEST_ID_HEADER))
    g.request_id = request_id
    g._request_id_token = correlation.bind(request_id)
    g._request_started = time.perf_counter()


def _finish_request(response):
    request_id = g.get("request_id")
    if request_id is None:
        return response
    response.headers[REQUEST_ID_HEADER] = request_id
    status = response.status_code
    if status < 400 and request.path.startswith(_QUIET_PATHS):
        return response
    duration_ms = round((time.perf_counter() - g.get("_request_started", time.perf_counter())) * 1000, 1)
    level = logging.ERROR if status >= 500 else logging.INFO
    request_log.log(level, "%s %s %s", request.method, request.path, status, extra={"fields": {
        "method": request.method, "path": request.path, "endpoint": request.endpoint, "status": status,
        "duration_ms": duration_ms, "remote_addr": request.remote_addr,
    }})
    return response


def _end_request(exc=None):
    token = g.pop("_request_id_token", None)
    if token is not None:
        try:
            correlation.unbind(token)
        except ValueError:  # bound in another context (a copied request context): let it be
            pass


# --- jobs ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def job_scope(func_name, *, queue, job_id=None, request_id=None):
    """Run one job with its request id bound; write its line when it ends.

    Yields a dict: set `outcome["status"] = "failed"` (and `"error"`) when the job failed
    without raising (RQ's worker catches the job's exception itself). An exception raised
    in the block is logged as a failure and re-raised.
    """
    outcome = {"status": "finished", "error": None}
    started = time.perf_counter()
    with correlation.bound(request_id):
        try:
            yield outcome
        except BaseException as exc:
            outcome["status"], outcome["error"] = "failed", exc.__class__.__name__
            raise
        finally:
            status = outcome["status"]
            fields = {"job_id": job_id, "func": func_name, "queue": queue, "status": status,
                      "duration_ms": round((time.perf_counter() - started) * 1000, 1)}
            if outcome.get("error"):
                fields["error"] = outcome["error"]
            job_log.log(logging.ERROR if status == "failed" else logging.INFO, "job %s %s", func_name, status,
                        extra={"fields": fields})
            from app import metrics

            metrics.job_finished(queue, status)
