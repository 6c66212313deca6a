"""Dinghuo application factory."""
from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from app import config as config_module

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")
TEMPLATES_DIR = str(Path(__file__).resolve().parent.parent / "templates")


class ApiWithoutSessions(SecureCookieSessionInterface):
    """The JSON API authenticates with bearer tokens and never uses Flask's session, so
    requests under /api/ skip opening (and signing) the session cookie."""

    def open_session(self, app, request):
        if request.path.startswith(("/api/", "/pay/", "/logistics/")):
            return self.make_null_session(app)
        return super().open_session(app, request)


def create_app(config=None):
    """Build the app. `config` (a mapping) overrides what the environment says."""
    app = Flask(__name__, template_folder=TEMPLATES_DIR, instance_path=str(config_module.INSTANCE_DIR))
    settings = config_module.from_env()
    if config:
        settings.update(config)
    config_module.validate(settings)
    app.config.update(settings)
    # Console sign-ins (the only use of Flask's session) expire after CONSOLE_SESSION_HOURS.
    app.permanent_session_lifetime = timedelta(hours=app.config["CONSOLE_SESSION_HOURS"])
    app.config.setdefault("API_TITLE", "订货 Dinghuo 小程序 API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/mp/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.session_interface = ApiWithoutSessions()

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # The services' locking assumes READ COMMITTED; don't inherit a server default.
        options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
        options.setdefault("isolation_level", "READ COMMITTED")
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        Path(app.config["SQLALCHEMY_DATABASE_URI"][len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)

    from app import jobs, logs, metrics

    logs.configure(app)  # JSON lines in production, redacted (docs/production.md)
    logs.init_app(app)  # first request hook: the request id is bound before any other
    metrics.init_app(app, queue_names=jobs.QUEUE_NAMES, queue_connection=jobs.redis_connection)  # /metrics

    from app import (  # noqa: F401
        database,  # noqa: F401  (registers the SQLite transaction hooks)
        errors,
        models,
        ratelimit,
        security_headers,
    )
    from app.extensions import Api, db, migrate
    from app.kernel import events
    from app.notify import channels, wechat_channels

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    # One Api per app: flask-smorest keeps the OpenAPI spec on the Api object.
    api = Api(
        app,
        spec_kwargs={
            "info": {"description": "经销商小程序使用的接口。金额单位均为分（整数）。"},
        },
    )
    errors.init_app(app)
    ratelimit.init_app(app)
    security_headers.init_app(app)
    if app.config["TRUSTED_PROXIES"]:
        # Client address and scheme as the reverse proxies in front report them (rate limits, HSTS).
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    events.init_app(app)
    _subscribe(app)
    channels.init_app(app)
    wechat_channels.register(app)
    from app.tracking import subscriptions as tracking_subscriptions

    tracking_subscriptions.register(app)  # the `kuaidi100` channel

    from app.health import bp as health_bp
    from miniprogram_api import register as register_miniprogram_api

    app.register_blueprint(health_bp)
    from callbacks import register as register_callbacks

    register_callbacks(app)  # /pay/wechat/notify, /logistics/kuaidi100/notify, /files/<key>
    register_miniprogram_api(app, api)
    from console import bp as console_bp

    app.register_blueprint(console_bp)  # after the API: it uses the order_no URL converter
    from bots.callback import (
        bp as wecom_callback_bp,  # WeCom callback at /wecom/callback
    )

    app.register_blueprint(wecom_callback_bp)

    from app.cli import register as register_cli

    register_cli(app)
    return app


def _subscribe(app):
    """Every reaction to a domain event, in one list: the core publishes, shells and the
    notifiers subscribe (`app.kernel.events`)."""
    from app.kernel.events import subscribe
    from app.notify import dealer_alerts
    from app.tracking import subscriptions as tracking_subscriptions
    from bots import announce, rep_alerts

    subscribe(app, "order.placed", rep_alerts.order_placed)
    subscribe(app, "order.transitioned", dealer_alerts.order_changed)
    subscribe(app, "order.transitioned", rep_alerts.order_changed)
    subscribe(app, "shipment.sent", dealer_alerts.shipment_sent)
    subscribe(app, "shipment.sent", rep_alerts.shipment_sent)
    subscribe(app, "shipment.sent", tracking_subscriptions.shipment_sent)  # Kuaidi100, through the outbox
    subscribe(app, "policy.published", announce.policy_published)
    subscribe(app, "campaign.sending", announce.campaign_sending)
    subscribe(app, "return.requested", rep_alerts.return_requested)
    subscribe(app, "return.changed", dealer_alerts.return_changed)
    subscribe(app, "offline_payment.decided", dealer_alerts.offline_payment_decided)
    subscribe(app, "rebate.approved", dealer_alerts.rebate_approved)
    subscribe(app, "statement.issued", dealer_alerts.statement_issued)
    subscribe(app, "statement.dispute_resolved", dealer_alerts.statement_dispute_resolved)
