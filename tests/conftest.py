"""Fixtures: an app on a fresh migrated SQLite file per test, an app on PostgreSQL
(when TEST_DATABASE_URL is set), a WeChat stand-in on 127.0.0.1, and data factories.

Set REQUIRE_SERVICES=1 (CI does) to turn a missing or unreachable PostgreSQL/Redis
into an error instead of a skip.
"""
import contextlib
import copy
import os
import shutil
import socket
import sqlite3
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import requests
import sqlalchemy as sa

from app import create_app, models, ratelimit  # noqa: F401  (every model registered before a test module builds a query)
from app import config as config_module
from app.config import _database_url
from app.extensions import db
from app.kernel import clock as kernel_clock
from tests import factories

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _per_worker_redis(url):
    """Under pytest-xdist each worker flushes a Redis database of its own: gw0 the URL's (15),
    gw1 the one below it, and so on."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    parts = urlsplit(url)
    number = int(parts.path.lstrip("/") or 0) - int(worker.removeprefix("gw"))
    return urlunsplit(parts._replace(path=f"/{number % 16}"))


TEST_REDIS_URL = _per_worker_redis(TEST_REDIS_URL)


# --- no traffic to the internet ---------------------------------------------

_real_send = requests.adapters.HTTPAdapter.send


def _local_only_send(self, request, *args, **kwargs):
    host = urlsplit(request.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise AssertionError(f"test tried to reach a real host: {request.url}")
    return _real_send(self, request, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", _local_only_send)


# --- time -------------------------------------------------------------------------
# No test reads the real clock. A test that needs a moment sets the kernel clock (the
# `clock` fixture); the whole session runs as if it started at TEST_NOW, so the rest see
# the same calendar whatever day the suite is run: time-machine moves the process's wall
# clock (ticking from that instant), and subprocesses the tests start get the same shift
# through tests/shifted.py. The default instant is an edge on purpose: the first half hour
# of a year in China, while UTC is still 31 December. DINGHUO_TEST_NOW moves the session
# elsewhere (CI runs it a second time on a leap day's last half hour); DINGHUO_TEST_NOW=wall
# runs at the real wall clock.

DEFAULT_TEST_NOW = "2027-01-01T00:30:00+08:00"
TEST_NOW = os.environ.get("DINGHUO_TEST_NOW") or DEFAULT_TEST_NOW
if TEST_NOW == "wall":
    TEST_NOW = None
_travel = None


def pytest_configure(config):
    global _travel
    if TEST_NOW and _travel is None:
        import time

        import time_machine
        from datetime import datetime

        destination = datetime.fromisoformat(TEST_NOW)
        if destination.tzinfo is None:
            raise pytest.UsageError("DINGHUO_TEST_NOW needs an offset, e.g. 2027-01-01T00:30:00+08:00")
        real = time.time()
        _travel = time_machine.travel(destination, tick=True)
        _travel.start()
        # time-machine starts ticking at the first reading: read now, so the shift is exact.
        os.environ["DINGHUO_TEST_CLOCK_SHIFT"] = repr(time.time() - real)


def pytest_report_header(config):
    from datetime import datetime

    return f"wall clock: {datetime.now(kernel_clock.BUSINESS_TZ).isoformat(timespec='seconds')} (China)" + (
        f" (the session travelled to {TEST_NOW})" if TEST_NOW else " (the real wall clock)")


# The moment the `clock` fixture starts at: a Thursday late in November, 10:00 in China.
CLOCK_START = kernel_clock.china_time(2026, 11, 26, 10, 0)


@pytest.fixture
def clock():
    """The kernel clock, frozen at CLOCK_START for this test; `clock.set(...)`/`clock.advance(...)`
    move it for every service and every thread."""
    fake = kernel_clock.FakeClock(CLOCK_START)
    kernel_clock.use(fake)
    yield fake
    kernel_clock.reset()


@pytest.fixture(autouse=True)
def _wall_clock_between_tests():
    yield
    kernel_clock.reset()


# --- WeChat stand-in ----------------------------------------------------------

@pytest.fixture(scope="session")
def standin(tmp_path_factory):
    from devtools.standin import StandinServer

    server = StandinServer.start(app_id="wx-test-appid", secret="test-app-secret")
    server.test_pay_config = _configure_wechatpay(server, tmp_path_factory.mktemp("wechatpay"))
    yield server
    server.stop()


def _configure_wechatpay(server, directory):
    """Fresh RSA keys for the test session (merchant and platform), known to the stand-in
    as WeChat Pay knows them; returns the app's WECHATPAY_* settings."""
    from pathlib import Path

    from app.integrations.wechatpay import generate_keys

    keys = generate_keys(directory)
    settings = {
        "WECHATPAY_MCHID": "1900000109", "WECHATPAY_APPID": "wx-test-appid",
        "WECHATPAY_PRIVATE_KEY": keys["merchant_private_key"], "WECHATPAY_CERT_SERIAL_NO": "5157F09EFDC096DE15EBE81A47057A72",
        "WECHATPAY_APIV3_KEY": "test-apiv3-key-32-bytes-long-abc", "WECHATPAY_PUBLIC_KEY": keys["platform_public_key"],
        "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0119000001092026112600000000000001",
        "WECHATPAY_NOTIFY_URL": "http://localhost/pay/wechat/notify",
    }
    server.pay.configure(
        mchid=settings["WECHATPAY_MCHID"], appid=settings["WECHATPAY_APPID"],
        merchant_public_key=Path(keys["merchant_public_key"]).read_text(),
        merchant_serial_no=settings["WECHATPAY_CERT_SERIAL_NO"], apiv3_key=settings["WECHATPAY_APIV3_KEY"],
        platform_private_key=Path(keys["platform_private_key"]).read_text(),
        platform_public_key_id=settings["WECHATPAY_PUBLIC_KEY_ID"],
    )
    return {**settings, "_keys": keys}


@pytest.fixture
def wechat(standin):
    standin.reset()
    return standin


# Uploaded files (app.storage's local backend) go to a scratch directory, never instance/.
_STORAGE_DIR = tempfile.mkdtemp(prefix="dinghuo-test-uploads-")
# So does the demo's settings file (`demo seed` in tests writes it; a developer's own demo
# file must not reach the suite's apps).
config_module.DEMO_SETTINGS_FILE = Path(tempfile.mkdtemp(prefix="dinghuo-test-demo-")) / "demo-settings.json"


def _base_config(standin):
    return {
        "ENV_NAME": "test",
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        # One PBKDF2 round instead of scrypt (~0.2 s a hash): the suite hashes thousands.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",
        # Committed notifications wait for the sweep, as no test but a `delivers` one needs
        # them sent (a real HTTP round trip to the stand-in on every commit otherwise).
        "OUTBOX_DELIVER_INPROCESS": False,
        "REDIS_URL": None,
        "WECHAT_API_BASE": standin.base_url,
        "WECOM_API_BASE": standin.base_url,
        "WECHATPAY_API_BASE": standin.base_url,
        **{k: v for k, v in standin.test_pay_config.items() if k.startswith("WECHATPAY_")},
        "WECHAT_APP_ID": "wx-test-appid",
        "WECHAT_APP_SECRET": "test-app-secret",
        "WECHAT_HTTP_TIMEOUT": 2,
        # Tests change prices and users between requests; tests/test_caches.py covers caching.
        "CATALOGUE_CACHE_SECONDS": 0,
        "CALLER_CACHE_SECONDS": 0,
        "STORAGE_BACKEND": "local",
        "STORAGE_DIR": _STORAGE_DIR,
    }


def _migrate(app):
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
        db.engine.dispose()


# --- SQLite app (the core suite) -----------------------------------------------

@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory, standin):
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    app = create_app({**_base_config(standin), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}"})
    _migrate(app)
    return path


class _SqliteFile:
    """The session app's SQLite file, and which cached layer of data (see `_data_layer`)
    it holds exactly as installed."""

    def __init__(self, path, template):
        self.path = path
        self.template = template
        self.layer = None
        self.stamp = None

    def install(self, source, layer):
        db.session.remove()
        db.engine.dispose()
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        shutil.copy(source, self.path)
        self.layer, self.stamp = layer, self._stamp()

    def mark(self, layer):
        """The file now is `layer`, as it stands."""
        self.layer, self.stamp = layer, self._stamp()

    def pristine(self):
        """True when the file is its layer as installed or marked: nothing written or pending since."""
        session = db.session
        return not (session.new or session.dirty or session.deleted) and self._stamp() == self.stamp

    def save_as(self, target):
        """A consistent copy of the committed database (SQLite's backup API)."""
        source, copy_ = sqlite3.connect(self.path), sqlite3.connect(target)
        try:
            source.backup(copy_)
        finally:
            source.close()
            copy_.close()

    def _stamp(self):
        main, wal = os.stat(self.path), Path(f"{self.path}-wal")
        return main.st_size, main.st_mtime_ns, wal.stat().st_size if wal.exists() else 0


@pytest.fixture(scope="session")
def _sqlite_app(tmp_path_factory, _sqlite_template, standin):
    """One app for the session's SQLite tests; each test gets a fresh copy of the database."""
    path = tmp_path_factory.mktemp("db") / "test.sqlite3"
    app = create_app({**_base_config(standin), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}"})
    return app, _SqliteFile(path, _sqlite_template)


@contextlib.contextmanager
def one_test(app, reset_data, *, keep_connections=False):
    """Run one test on a shared app: `reset_data()` in a fresh app context first; afterwards the
    config is as it was and whatever the test cached on the app (gateways, caches, engines)
    is gone, so no test sees another's state. Rate-limit counters start from zero: every
    test's requests come from 127.0.0.1. `keep_connections`: the next test may reuse
    the pool's connections (PostgreSQL: each returns rolled back)."""
    config = copy.deepcopy(dict(app.config))
    extensions = set(app.extensions)
    try:
        with app.app_context():
            reset_data()
            ratelimit.limiter(app).reset()
            yield app
            db.session.remove()
    finally:
        for key in set(app.extensions) - extensions:
            _dispose(app.extensions.pop(key))
        app.config.clear()
        app.config.update(config)
        if not keep_connections:
            with app.app_context():
                db.engine.dispose()


def _dispose(value):
    for item in value if isinstance(value, tuple) else (value,):
        if hasattr(item, "dispose"):
            item.dispose()
        elif hasattr(item, "close") and hasattr(item, "connection_pool"):
            item.close()  # a Redis client


def _delivers(app, request):
    """`@pytest.mark.delivers`: this test follows committed notifications to the stand-in."""
    app.config["OUTBOX_DELIVER_INPROCESS"] = request.node.get_closest_marker("delivers") is not None


@pytest.fixture
def app(request, _sqlite_app):
    app, sqlite_file = _sqlite_app
    layer, saved = _starting_layer(request)
    with one_test(app, lambda: sqlite_file.install(saved or sqlite_file.template, layer or "empty")):
        _delivers(app, request)
        yield app


# --- cached data layers (SQLite) ----------------------------------------------------
# `world` and `staff` (on top of it) build the same rows for every test that reads the
# clock at the same moment. On SQLite the first test to build a layer on an untouched
# database saves the file; the `app` fixture of a later test that asks for that layer starts
# from a copy of it, and the fixture loads the same objects by id. A test whose database is
# not the untouched layer below (a fixture wrote first, or the clock moved between fixtures)
# builds its rows as before.

_LAYERS = ("world", "staff")
_layer_files = {}  # (layer, moment) -> (saved file, {layer name: row refs} for it and those below)


def _clock_moment():
    """What the layer's rows depend on: a frozen kernel clock's instant, or else the day."""
    source = kernel_clock._source
    if isinstance(source, kernel_clock.FakeClock) and not source.tick:
        return source()
    return kernel_clock.business_today()


def _starting_layer(request):
    """The saved file the `app` fixture may start from: the top layer the test asks for."""
    wanted = [name for name in _LAYERS if name in request.fixturenames]
    key = (wanted[-1], _clock_moment()) if wanted else None
    return (key, _layer_files[key][0]) if key in _layer_files else (None, None)


def _data_layer(name, build, sqlite_file, *, below_value=None):
    """The layer's value: loaded when the database already holds it, else installed from its
    saved file or built (and saved when built on the untouched layer below). `below_value`,
    the namespace of the layer below, is re-pointed at the new session's objects in place."""
    moment = _clock_moment()
    key = (name, moment)
    level = _LAYERS.index(name)
    parent = (_LAYERS[level - 1], moment) if level else "empty"
    held = sqlite_file.layer
    holds_it = isinstance(held, tuple) and held[1] == moment and _LAYERS.index(held[0]) >= level
    if not holds_it and sqlite_file.pristine():
        if held != parent and parent == "empty":
            sqlite_file.install(sqlite_file.template, "empty")  # an untouched layer of another moment
        if sqlite_file.layer == parent and key in _layer_files:
            below_refs = _row_refs(below_value) if below_value is not None else None
            sqlite_file.install(_layer_files[key][0], key)
            if below_refs is not None:
                for attr, obj in vars(_load_rows(below_refs)).items():
                    setattr(below_value, attr, obj)
            holds_it, held = True, key
    if holds_it:  # installed here or by the `app` fixture: the rows are there, load them
        value = _load_rows(_layer_files[held][1][name])
        db.session.commit()  # as after building: no transaction open, objects expired
        return value
    on_parent = sqlite_file.layer == parent and sqlite_file.pristine()
    value = build()
    if on_parent:
        db.session.commit()
        path = sqlite_file.path.with_name(f"layer-{name}-{len(_layer_files)}.sqlite3")
        sqlite_file.save_as(path)
        _layer_files[key] = path, {**(_layer_files[parent][1] if level else {}), name: _row_refs(value)}
        sqlite_file.mark(key)
    return value


def _row_refs(value):
    if isinstance(value, SimpleNamespace):
        return SimpleNamespace, {k: _row_refs(v) for k, v in vars(value).items()}
    if isinstance(value, dict):
        return dict, {k: _row_refs(v) for k, v in value.items()}
    state = sa.inspect(value)  # a mapped row; anything else has no place in a layer
    return "row", type(value), state.identity


def _load_rows(refs):
    wanted = {}

    def collect(ref):
        if ref[0] == "row":
            wanted.setdefault(ref[1], set()).add(ref[2])
        else:
            for item in ref[1].values():
                collect(item)

    def build(ref):
        if ref[0] == "row":
            return db.session.get(ref[1], ref[2])
        return ref[0](**{k: build(v) for k, v in ref[1].items()})

    collect(refs)
    loaded = []  # held until built: the session's identity map keeps only weak references
    for model, identities in wanted.items():  # one query per model; `get` then finds them
        (key,) = sa.inspect(model).primary_key
        loaded += db.session.scalars(sa.select(model).where(key.in_([i[0] for i in identities]))).all()
    return build(refs)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# --- PostgreSQL app -------------------------------------------------------------

def _service_unavailable(what):
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {what}", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def _pg_schema_url(standin):
    if not TEST_DATABASE_URL:
        _service_unavailable("TEST_DATABASE_URL is not set")
    import sqlalchemy as sa

    base_url = _database_url(TEST_DATABASE_URL)
    schema = f"dinghuo_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base_url)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:
        _service_unavailable(f"PostgreSQL at TEST_DATABASE_URL is unreachable: {exc.orig}")
    sep = "&" if "?" in base_url else "?"
    url = f"{base_url}{sep}options=-csearch_path%3D{schema}"
    app = create_app({**_base_config(standin), "SQLALCHEMY_DATABASE_URI": url})
    _migrate(app)
    yield url
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


_EMPTY_SCHEMA_SQL = {}  # database URL -> the one statement that empties that schema


def truncate_all():
    """Empty every table of the app's PostgreSQL schema and restart its ids, committed.

    One round trip of DELETEs (children first) and `setval`s: on tables holding a test's
    few rows that is ~20x faster than TRUNCATE, which rewrites every table's files."""
    url = str(db.engine.url)
    if url not in _EMPTY_SCHEMA_SQL:
        sequences = db.session.execute(db.text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'S' AND n.nspname = current_schema() ORDER BY 1"
        )).scalars().all()
        deletes = [f'DELETE FROM "{t.name}"' for t in reversed(db.metadata.sorted_tables)]
        restarts = ", ".join(f"setval('\"{name}\"', 1, false)" for name in sequences)
        _EMPTY_SCHEMA_SQL[url] = "; ".join(deletes + ([f"SELECT {restarts}"] if restarts else []))
    db.session.connection().exec_driver_sql(_EMPTY_SCHEMA_SQL[url])
    db.session.commit()


@pytest.fixture(scope="session")
def _pg_session_app(_pg_schema_url, standin):
    return create_app(
        {
            **_base_config(standin),
            "SQLALCHEMY_DATABASE_URI": _pg_schema_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 20, "max_overflow": 20},
        }
    )


@pytest.fixture
def pg_app(request, _pg_session_app):
    with one_test(_pg_session_app, truncate_all, keep_connections=True):
        _delivers(_pg_session_app, request)
        yield _pg_session_app


@pytest.fixture
def pg_client(pg_app):
    return pg_app.test_client()


# --- Redis ------------------------------------------------------------------------

@pytest.fixture
def redis_url():
    if not TEST_REDIS_URL:
        _service_unavailable("TEST_REDIS_URL is not set")
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        _service_unavailable(f"Redis at TEST_REDIS_URL is unreachable: {exc}")
    return TEST_REDIS_URL


# --- data -------------------------------------------------------------------------

@pytest.fixture
def world(app, _sqlite_app):
    """Two dealers with users, a small catalogue with prices and stock (SQLite)."""
    return _data_layer("world", factories.build_world, _sqlite_app[1])


@pytest.fixture
def pg_world(pg_app):
    return factories.build_world()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def on_both(request):
    """(client, world) on SQLite and, with TEST_DATABASE_URL, on PostgreSQL: a submit test
    that takes it runs the step-by-step order write and the one-statement PostgreSQL write
    (`app.orders.writing`) with the same assertions."""
    if request.param == "sqlite":
        return request.getfixturevalue("client"), request.getfixturevalue("world")
    return request.getfixturevalue("pg_client"), request.getfixturevalue("pg_world")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served_demo(directory, sqlite_template):
    """The demo as `make demo` serves it (`demo seed`, then `demo serve`'s API and stand-in) on
    free ports, its database a copy of the migrated `sqlite_template` in `directory`: yields
    (API base URL, stand-in base URL, what `demo seed` printed)."""
    from devtools.cli import start_demo

    database = directory / "demo.sqlite3"
    shutil.copy(sqlite_template, database)  # `flask db upgrade`, done once for the session
    with pytest.MonkeyPatch.context() as env:
        for name in ("REDIS_URL", "WECHAT_API_BASE", "WECOM_API_BASE", "WECHATPAY_API_BASE", "DINGHUO_ENV"):
            env.delenv(name, raising=False)
        env.setenv("DATABASE_URL", f"sqlite:///{database}")
        env.setenv("STORAGE_DIR", str(directory / "uploads"))
        seeder = create_app()
        seeded = seeder.test_cli_runner().invoke(args=["demo", "seed"])
        assert seeded.exit_code == 0, seeded.output
        port, standin_port = free_port(), free_port()
        app, standin = start_demo(seeder.config, port=port, standin_port=standin_port, key_dir=directory / "keys")
        try:
            with served(app, port) as api:
                yield api, standin.base_url, seeded.output
        finally:
            standin.stop()


@contextlib.contextmanager
def served(app, port=None):
    """`app` served over real HTTP on 127.0.0.1:`port` (a free one if not given) in a daemon
    thread for the block; yields the base URL."""
    import threading

    from werkzeug.serving import make_server

    port = port or free_port()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        httpd.shutdown()
        thread.join(5)


# --- scheduling: the longest tests start first -------------------------------------
# pytest-xdist hands tests out in collection order; a 20-second test collected last keeps one
# worker busy after the others are done. These (measured with --durations) go first.
LONG_TESTS = (
    "tests/test_order_properties.py::test_order_service_state_machine",
    "tests/test_imports.py::test_a_5000_row_price_list_imports_correctly",
    "tests/test_metrics.py::test_gunicorn_config_serves_probes_and_multiprocess_metrics",
    "tests/test_delivery_worker.py::",
    "tests/test_docs_curls.py::",
    "tests/test_browser.py::",
    "tests/test_openapi_schemathesis.py::",
)


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        return next((i for i, prefix in enumerate(LONG_TESTS) if item.nodeid.startswith(prefix)), len(LONG_TESTS))

    items.sort(key=rank)  # stable: the rest keep their order


# --- CI guard: the service suites must really have run ------------------------------

_service_runs = Counter()


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed:
        for marker in ("postgres", "redis"):
            if marker in report.keywords:
                _service_runs[marker] += 1


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_STORAGE_DIR, ignore_errors=True)
    if not REQUIRE_SERVICES or session.config.option.collectonly or session.config.option.markexpr:
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # under xdist the controller sees every worker's reports and checks them all
    missing = [m for m in ("postgres", "redis") if _service_runs[m] == 0]
    if missing:
        session.config.get_terminal_writer().line(
            f"REQUIRE_SERVICES=1 but no {'/'.join(missing)} test passed: the service suites did not run",
            red=True,
        )
        session.exitstatus = 1


# --- PostgreSQL + Redis app, as a worker runs it ---------------------------------------

@pytest.fixture(scope="session")
def _rq_session_app(_pg_schema_url, standin):
    return create_app({
        **_base_config(standin),
        "SQLALCHEMY_DATABASE_URI": _pg_schema_url,
        "REDIS_URL": TEST_REDIS_URL,
    })


@pytest.fixture
def rq_app(_rq_session_app, redis_url):
    """PostgreSQL + Redis (the test's Redis database, flushed), like a worker's app."""
    redis.Redis.from_url(redis_url).flushdb()
    with one_test(_rq_session_app, truncate_all):
        yield _rq_session_app
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def rq_world(rq_app):
    return factories.build_world()


@pytest.fixture
def staff(world, _sqlite_app):
    """Console accounts beside the world's rep (password `tests.helpers.PASSWORD`): boss (admin),
    money (finance), rep2 (another rep, no dealers), cang (warehouse), shi (marketing)."""
    return _data_layer("staff", lambda: _build_staff(world), _sqlite_app[1], below_value=world)


def _build_staff(world):
    from app.staff.service import create_staff, set_password
    from tests.helpers import PASSWORD

    set_password(world.rep, PASSWORD)
    return {
        "rep": world.rep,
        "admin": create_staff(username="boss", name="管理员", role="admin", password=PASSWORD),
        "finance": create_staff(username="money", name="财务", role="finance", password=PASSWORD),
        "other_rep": create_staff(username="rep2", name="李业务", role="sales", password=PASSWORD),
        "warehouse": create_staff(username="cang", name="仓管", role="warehouse", password=PASSWORD),
        "marketing": create_staff(username="shi", name="市场", role="marketing", password=PASSWORD),
    }
