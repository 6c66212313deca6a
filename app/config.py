"""Configuration from environment variables.

Web processes, workers and the CLI all build their config here, so they agree.
`create_app(config)` accepts a mapping of overrides (tests use it).
"""
import json
import os
import re
from pathlib import Path

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"

OFFICIAL_WECHAT_API_BASE = "https://api.weixin.qq.com"
OFFICIAL_WECOM_API_BASE = "https://qyapi.weixin.qq.com"
OFFICIAL_WECHATPAY_API_BASE = "https://api.mch.weixin.qq.com"
OFFICIAL_KUAIDI100_URL = "https://poll.kuaidi100.com/poll"

# Settings that must be real in production; the demo/test defaults are not secret.
REQUIRED_IN_PRODUCTION = (
    "SECRET_KEY", "WECHAT_APP_ID", "WECHAT_APP_SECRET", "WECOM_SECRET", "WECOM_TOKEN", "WECOM_AES_KEY",
)
DEV_SECRET_KEY = "dev-only-not-secret"


class ConfigError(RuntimeError):
    """Start-up refused because the configuration is unusable."""


def _env_int(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"环境变量 {name} 必须是整数，当前为 {raw!r}") from None


def _env_bool(env, name, default):
    raw = (env(name) or "").strip().lower()
    if raw == "":
        return default
    if raw not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ConfigError(f"环境变量 {name} 只能是 1/0（或 true/false），当前为 {raw!r}")
    return raw in ("1", "true", "yes", "on")


def _database_url(url):
    # Accept the common postgres:// spellings and route them to psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def from_env():
    """Read every setting from the environment (defaults suit the embedded demo)."""
    env = os.environ.get
    default_db = "sqlite:///" + str(INSTANCE_DIR / "dinghuo.sqlite3")
    return {
        "ENV_NAME": env("DINGHUO_ENV", "development"),
        "SECRET_KEY": env("SECRET_KEY") or DEV_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": _database_url(env("DATABASE_URL") or default_db),
        "REDIS_URL": env("REDIS_URL") or None,
        "WECHAT_API_BASE": (env("WECHAT_API_BASE") or OFFICIAL_WECHAT_API_BASE).rstrip("/"),
        "WECOM_API_BASE": (env("WECOM_API_BASE") or OFFICIAL_WECOM_API_BASE).rstrip("/"),
        "WECHATPAY_API_BASE": (env("WECHATPAY_API_BASE") or OFFICIAL_WECHATPAY_API_BASE).rstrip("/"),
        # WeChat Pay API v3 (direct merchant, mini-program JSAPI). Unset: paying by WeChat
        # answers 503. Key settings are file paths. Where to find each: docs/integration/wechatpay.md.
        "WECHATPAY_MCHID": env("WECHATPAY_MCHID") or None,
        "WECHATPAY_APPID": env("WECHATPAY_APPID") or None,
        "WECHATPAY_PRIVATE_KEY": env("WECHATPAY_PRIVATE_KEY") or None,
        "WECHATPAY_CERT_SERIAL_NO": env("WECHATPAY_CERT_SERIAL_NO") or None,
        "WECHATPAY_APIV3_KEY": env("WECHATPAY_APIV3_KEY") or None,
        "WECHATPAY_PUBLIC_KEY": env("WECHATPAY_PUBLIC_KEY") or None,
        "WECHATPAY_PUBLIC_KEY_ID": env("WECHATPAY_PUBLIC_KEY_ID") or None,
        "WECHATPAY_NOTIFY_URL": env("WECHATPAY_NOTIFY_URL") or None,
        # Minutes a JSAPI prepay order stays payable (WeChat's prepay_id lasts 2 hours).
        "WECHATPAY_EXPIRE_MINUTES": _env_int("WECHATPAY_EXPIRE_MINUTES", 30),
        # Kuaidi100 (快递100) tracking: the customer's authorization key, the salt pushes are
        # signed with, where subscriptions go, and the full URL of this site's push receiver
        # (…/logistics/kuaidi100/notify). Without the key, salt or callback URL no waybill is
        # subscribed. Where to find each: docs/integration/kuaidi100.md.
        "KUAIDI100_KEY": env("KUAIDI100_KEY") or None,
        "KUAIDI100_SALT": env("KUAIDI100_SALT") or None,
        "KUAIDI100_URL": env("KUAIDI100_URL") or OFFICIAL_KUAIDI100_URL,
        "KUAIDI100_CALLBACK_URL": env("KUAIDI100_CALLBACK_URL") or None,
        "KUAIDI100_HTTP_TIMEOUT": _env_int("KUAIDI100_HTTP_TIMEOUT", 5),
        "WECHAT_APP_ID": env("WECHAT_APP_ID") or "wx-demo-appid",
        "WECHAT_APP_SECRET": env("WECHAT_APP_SECRET") or "demo-app-secret",
        "WECHAT_HTTP_TIMEOUT": _env_int("WECHAT_HTTP_TIMEOUT", 5),
        "TOKEN_TTL_SECONDS": _env_int("TOKEN_TTL_SECONDS", 7200),
        "INVITE_TTL_DAYS": _env_int("INVITE_TTL_DAYS", 7),
        "BRAND_NAME": env("BRAND_NAME") or "鼎禾食品",
        # Seconds a process may reuse a dealer's priced catalogue page (stock is always
        # read live; checkout always re-prices) and a token's dealer user. 0 disables.
        "CATALOGUE_CACHE_SECONDS": _env_int("CATALOGUE_CACHE_SECONDS", 5),
        "CALLER_CACHE_SECONDS": _env_int("CALLER_CACHE_SECONDS", 5),
        # Console sign-ins expire after this many hours; the cookie is HttpOnly and SameSite=Lax.
        "CONSOLE_SESSION_HOURS": _env_int("CONSOLE_SESSION_HOURS", 8),
        # How console passwords are hashed (werkzeug's method string). Only the test suite
        # sets a cheap one; production refuses anything but scrypt.
        "PASSWORD_HASH_METHOD": "scrypt",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        **_security_settings(env),
        # Request bodies above this size answer 413 before any parsing.
        "MAX_CONTENT_LENGTH": _env_int("MAX_CONTENT_LENGTH", 1024 * 1024),
        **_subscribe_settings(env),
        # WeCom (企业微信): the self-built app that sends rep messages and receives the
        # callback (Token + EncodingAESKey from 接收消息 → 设置API接收), and the internal
        # group robot's webhook key. Where to find each: docs/integration/wechat-setup.md.
        "WECOM_CORP_ID": env("WECOM_CORP_ID") or "ww-demo-corpid",
        "WECOM_AGENT_ID": _env_int("WECOM_AGENT_ID", 1000002),
        "WECOM_SECRET": env("WECOM_SECRET") or "demo-wecom-secret",
        "WECOM_TOKEN": env("WECOM_TOKEN") or "demo-wecom-token",
        "WECOM_AES_KEY": env("WECOM_AES_KEY") or "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "WECOM_ROBOT_KEY": env("WECOM_ROBOT_KEY") or "demo-robot-key",
        # More internal group robots by name ({"sales": "<key>", ...}; "default" is WECOM_ROBOT_KEY),
        # and which of them receive campaign and policy announcements (comma separated names).
        "WECOM_ROBOT_KEYS": _env_json_object(env, "WECOM_ROBOT_KEYS", {}),
        "WECOM_ANNOUNCE_ROBOTS": tuple(
            n.strip() for n in (env("WECOM_ANNOUNCE_ROBOTS") or "default").split(",") if n.strip()),
        # Customer contact (客户联系): the secret of the app listed under 客户联系 → API →
        # 可调用应用; unset: the app's WECOM_SECRET is used (the usual setup). docs/staff/marketing/campaigns.md.
        "WECOM_CONTACT_SECRET": env("WECOM_CONTACT_SECRET") or None,
        # Group messages a customer group may receive a month from the corp; 0: as many as the
        # month has days (WeCom's documented default; a corp may lower it in 群发助手 settings).
        "CAMPAIGN_GROUP_MONTHLY_LIMIT": _env_int("CAMPAIGN_GROUP_MONTHLY_LIMIT", 0),
        # The campaign job: due scheduled campaigns, result polling and rep reminders.
        "CAMPAIGN_TICK_SECONDS": _env_int("CAMPAIGN_TICK_SECONDS", 120),
        # Remind a rep of an unconfirmed group-message task every this many hours, at most
        # CAMPAIGN_MAX_REMINDERS times (the first when the task is created).
        "CAMPAIGN_REMIND_HOURS": _env_int("CAMPAIGN_REMIND_HOURS", 4),
        "CAMPAIGN_MAX_REMINDERS": _env_int("CAMPAIGN_MAX_REMINDERS", 3),
        # Notification delivery (app.notify.delivery): the periodic outbox sweep, how long a
        # worker may hold a row it is sending before the sweep takes it back, and the first
        # back-off wait after a transient WeChat failure (doubled for the next try).
        "OUTBOX_SWEEP_SECONDS": _env_int("OUTBOX_SWEEP_SECONDS", 60),
        "OUTBOX_LEASE_SECONDS": _env_int("OUTBOX_LEASE_SECONDS", 90),
        "OUTBOX_RETRY_BASE_SECONDS": _env_int("OUTBOX_RETRY_BASE_SECONDS", 30),
        # Without Redis: deliver a committed notification at once, in the committing request
        # (the embedded default). Off: the rows wait for `flask notify sweep` (the test suite
        # runs so, and turns it on only in the tests that follow a notification to WeChat).
        "OUTBOX_DELIVER_INPROCESS": _env_bool(env, "OUTBOX_DELIVER_INPROCESS", True),
        # A fully shipped order the dealer has not confirmed completes this many days after
        # its last shipment (app.orders.closing.auto_complete_orders, a daily job).
        "ORDER_AUTO_COMPLETE_DAYS": _env_int("ORDER_AUTO_COMPLETE_DAYS", 10),
        **_storage_settings(env),
        **_ops_settings(env),
        **_demo_settings(env, _database_url(env("DATABASE_URL") or default_db)),
    }


def _security_settings(env):
    """Rate limits (app.ratelimit, in `limits` notation as flask-limiter writes it; empty: off), console sign-in
    lockout, the reverse proxy in front of the app and HTTPS-only cookies. docs/ops/security.md."""
    production = (env("DINGHUO_ENV") or "development") == "production"
    return {
        # Mini-program logins (each spends a code2Session call of the brand's quota): per
        # client address, checked before WeChat is asked; per WeChat user (openid), checked
        # before a token is issued.
        "MP_LOGIN_LIMIT_PER_ADDRESS": env("MP_LOGIN_LIMIT_PER_ADDRESS", "30/minute"),
        "MP_LOGIN_LIMIT_PER_USER": env("MP_LOGIN_LIMIT_PER_USER", "10/minute"),
        # Failed console sign-ins per client address and per username.
        "CONSOLE_LOGIN_LIMIT_PER_ADDRESS": env("CONSOLE_LOGIN_LIMIT_PER_ADDRESS", "30 per 15 minutes"),
        "CONSOLE_LOGIN_LIMIT_PER_ACCOUNT": env("CONSOLE_LOGIN_LIMIT_PER_ACCOUNT", "5/minute"),
        # This many wrong passwords in a row (none further apart than the lock lasts) lock a
        # staff account for CONSOLE_LOCKOUT_MINUTES; an admin may unlock it sooner. 0: never lock.
        "CONSOLE_LOCKOUT_FAILURES": _env_int("CONSOLE_LOCKOUT_FAILURES", 10),
        "CONSOLE_LOCKOUT_MINUTES": _env_int("CONSOLE_LOCKOUT_MINUTES", 15),
        # How many reverse proxies in front of the app set X-Forwarded-For/-Proto/-Host (0: none;
        # the client address is then the connection's). Rate limits and HSTS depend on it.
        "TRUSTED_PROXIES": _env_int("TRUSTED_PROXIES", 0),
        # The console's cookie only over HTTPS; on by default in production.
        "SESSION_COOKIE_SECURE": _env_bool(env, "SESSION_COOKIE_SECURE", production),
    }


# --- operations (app.logs, app.metrics): docs/production.md -------------------------------
LOG_FORMATS = ("json", "text")


def _ops_settings(env):
    """Log format, and who may read /metrics (allowed networks, or a bearer token)."""
    production = (env("DINGHUO_ENV") or "development") == "production"
    log_format = (env("LOG_FORMAT") or ("json" if production else "text")).strip().lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT 应为 {'、'.join(LOG_FORMATS)} 之一，当前为 {log_format!r}")
    allow = env("METRICS_ALLOW")
    allow = "127.0.0.1/32,::1/128" if allow is None else allow
    import ipaddress

    for item in (part.strip() for part in allow.split(",")):
        if item:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ConfigError(f"METRICS_ALLOW 中的 {item!r} 不是 IP 地址或网段（如 10.0.0.0/8）") from None
    return {"LOG_FORMAT": log_format, "METRICS_ALLOW": allow, "METRICS_TOKEN": env("METRICS_TOKEN") or None}


# --- file storage (app.storage): uploaded photos ----------------------------------------
STORAGE_BACKENDS = ("local", "s3")
S3_ADDRESSING_STYLES = ("auto", "path", "virtual")


def _storage_settings(env):
    """Where uploads are kept (a local directory, or an S3-compatible bucket) and how big
    an uploaded image may be."""
    backend = (env("STORAGE_BACKEND") or "local").strip().lower()
    if backend not in STORAGE_BACKENDS:
        raise ConfigError(f"STORAGE_BACKEND 应为 {'、'.join(STORAGE_BACKENDS)} 之一，当前为 {backend!r}")
    style = (env("S3_ADDRESSING_STYLE") or "auto").strip().lower()
    if style not in S3_ADDRESSING_STYLES:
        raise ConfigError(f"S3_ADDRESSING_STYLE 应为 {'、'.join(S3_ADDRESSING_STYLES)} 之一")
    settings = {
        "STORAGE_BACKEND": backend,
        "STORAGE_DIR": env("STORAGE_DIR") or str(INSTANCE_DIR / "uploads"),
        # Signed file URLs (local) and presigned URLs (S3) stop working after this many seconds.
        "STORAGE_URL_TTL_SECONDS": _env_int("STORAGE_URL_TTL_SECONDS", 3600),
        "S3_ENDPOINT_URL": env("S3_ENDPOINT_URL") or None,
        "S3_BUCKET": env("S3_BUCKET") or None,
        "S3_ACCESS_KEY": env("S3_ACCESS_KEY") or None,
        "S3_SECRET_KEY": env("S3_SECRET_KEY") or None,
        "S3_REGION": env("S3_REGION") or None,
        "S3_ADDRESSING_STYLE": style,
        # One uploaded image: at most this many bytes and this many pixels (width × height).
        "UPLOAD_MAX_BYTES": _env_int("UPLOAD_MAX_BYTES", 5 * 1024 * 1024),
        "UPLOAD_MAX_PIXELS": _env_int("UPLOAD_MAX_PIXELS", 40_000_000),
        # Marketing materials staff upload (app.materials): an image or poster, a short video
        # (MP4), a document (PDF / Word / Excel / PowerPoint); thumbnails at most this many pixels a side.
        "MATERIAL_IMAGE_MAX_BYTES": _env_int("MATERIAL_IMAGE_MAX_BYTES", 10 * 1024 * 1024),
        "MATERIAL_VIDEO_MAX_BYTES": _env_int("MATERIAL_VIDEO_MAX_BYTES", 20 * 1024 * 1024),
        "MATERIAL_FILE_MAX_BYTES": _env_int("MATERIAL_FILE_MAX_BYTES", 20 * 1024 * 1024),
        "MATERIAL_THUMBNAIL_PX": _env_int("MATERIAL_THUMBNAIL_PX", 480),
    }
    if backend == "s3" and not settings["S3_BUCKET"]:
        raise ConfigError("STORAGE_BACKEND=s3 需要设置 S3_BUCKET（以及 S3_ENDPOINT_URL、S3_ACCESS_KEY、S3_SECRET_KEY）")
    if not 64 <= settings["MATERIAL_THUMBNAIL_PX"] <= 2048:
        raise ConfigError("MATERIAL_THUMBNAIL_PX 应在 64 到 2048 之间")
    if settings["STORAGE_URL_TTL_SECONDS"] < 60:
        raise ConfigError("STORAGE_URL_TTL_SECONDS 至少 60 秒")
    return settings


# --- WECHAT_SUBSCRIBE_TEMPLATES: mini-program subscribe messages ----------------------
# Event -> template id as chosen in the WeChat console (公众平台 → 订阅消息 → 我的模板), and per
# event which of our values fills which template field. The demo defaults name templates
# whose fields are typical of the library's order templates.
SUBSCRIBE_EVENTS = ("order_approved", "order_rejected", "order_shipped", "payment_due", "order_cancelled",
                    "return_approved", "return_rejected", "return_received", "payment_confirmed", "payment_rejected",
                    "return_closed", "rebate_approved",
                    "statement_issued", "statement_resolved", "policy_published", "policy_reminder")
DEMO_SUBSCRIBE_TEMPLATES = {
    "order_approved": "demo-tmpl-order-approved",
    "order_rejected": "demo-tmpl-order-rejected",
    "order_shipped": "demo-tmpl-order-shipped",
    "payment_due": "demo-tmpl-payment-due",
    "policy_published": "demo-tmpl-policy-published",
    "policy_reminder": "demo-tmpl-policy-reminder",
}
DEMO_SUBSCRIBE_FIELDS = {
    "order_approved": {"character_string1": "order_no", "phrase2": "status", "amount3": "amount",
                       "time4": "time", "thing5": "tip"},
    "order_rejected": {"character_string1": "order_no", "phrase2": "status", "thing3": "reason",
                       "time4": "time"},
    "order_shipped": {"character_string1": "order_no", "thing2": "carrier", "character_string3": "tracking_no",
                      "time4": "time"},
    "payment_due": {"character_string1": "order_no", "amount2": "amount", "date3": "due_date", "thing4": "tip"},
    "order_cancelled": {"character_string1": "order_no", "phrase2": "status", "thing3": "reason",
                        "time4": "time"},
    # Returns (after-sales); no demo template: configure one to send these as subscribe messages.
    "return_approved": {"character_string1": "order_no", "phrase2": "status", "amount3": "amount", "time4": "time"},
    "return_rejected": {"character_string1": "order_no", "phrase2": "status", "thing3": "reason", "time4": "time"},
    "return_received": {"character_string1": "order_no", "phrase2": "status", "amount3": "amount", "time4": "time"},
    # Offline transfers finance confirmed or rejected; no demo template either.
    "payment_confirmed": {"amount1": "amount", "phrase2": "status", "thing3": "tip", "time4": "time"},
    "payment_rejected": {"amount1": "amount", "phrase2": "status", "thing3": "reason", "time4": "time"},
    "return_closed": {"character_string1": "order_no", "phrase2": "status", "amount3": "amount", "time4": "time"},
    # Rebates: `order_no` is the rebate document's number (FL + id) here.
    "rebate_approved": {"character_string1": "order_no", "phrase2": "status", "amount3": "amount", "time4": "time"},
    # Statements (order_no is the statement's number here); no demo template either.
    "statement_issued": {"character_string1": "order_no", "thing2": "goods", "amount3": "amount", "thing4": "tip"},
    "statement_resolved": {"character_string1": "order_no", "thing2": "reason", "time3": "time"},
    # Policies (app.policies): a new or updated policy, and staff's reminder to read/acknowledge it.
    "policy_published": {"thing1": "title", "phrase2": "category", "time3": "time", "thing4": "tip"},
    "policy_reminder": {"thing1": "title", "phrase2": "category", "time3": "time", "thing4": "tip"},
}
SUBSCRIBE_VALUES = ("order_no", "status", "amount", "reason", "time", "carrier", "tracking_no",
                    "dealer_name", "goods", "due_date", "tip", "title", "category")
MINIPROGRAM_STATES = ("formal", "trial", "developer")
# Field kinds of subscribe templates; the key names the kind (thing1, character_string2, ...).
SUBSCRIBE_FIELD_KINDS = ("thing", "number", "letter", "symbol", "character_string", "time", "date", "amount",
                         "phone_number", "car_number", "name", "phrase")


def _env_json_object(env, name, default):
    raw = env(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = json.loads(raw)
    except ValueError:
        raise ConfigError(f"环境变量 {name} 不是合法的 JSON") from None
    if not isinstance(value, dict):
        raise ConfigError(f"环境变量 {name} 应为 JSON 对象")
    return value


def _subscribe_settings(env):
    templates = _env_json_object(env, "WECHAT_SUBSCRIBE_TEMPLATES", DEMO_SUBSCRIBE_TEMPLATES)
    fields = {**DEMO_SUBSCRIBE_FIELDS, **_env_json_object(env, "WECHAT_SUBSCRIBE_FIELDS", {})}
    state = env("WECHAT_MINIPROGRAM_STATE") or "formal"
    for event, template_id in templates.items():
        if event not in SUBSCRIBE_EVENTS:
            raise ConfigError(f"WECHAT_SUBSCRIBE_TEMPLATES 中的事件 {event!r} 不认识，可用：{'、'.join(SUBSCRIBE_EVENTS)}")
        if not isinstance(template_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", template_id):
            raise ConfigError(f"WECHAT_SUBSCRIBE_TEMPLATES 中 {event} 的模板 ID 无效（应为 1–64 位字母、数字、_ 或 -）")
    for event, mapping in fields.items():
        if event not in SUBSCRIBE_EVENTS or not isinstance(mapping, dict) or not mapping:
            raise ConfigError(f"WECHAT_SUBSCRIBE_FIELDS 中 {event!r} 应为已知事件到非空对象的映射")
        for key, source in mapping.items():
            kind = re.fullmatch(r"([a-z_]+?)[0-9]+", key)
            if not kind or kind.group(1) not in SUBSCRIBE_FIELD_KINDS or source not in SUBSCRIBE_VALUES:
                raise ConfigError(
                    f"WECHAT_SUBSCRIBE_FIELDS 中 {event}.{key} 无效：字段名形如 thing1，取值为 {'、'.join(SUBSCRIBE_VALUES)} 之一"
                )
    if state not in MINIPROGRAM_STATES:
        raise ConfigError(f"WECHAT_MINIPROGRAM_STATE 应为 {'、'.join(MINIPROGRAM_STATES)} 之一")
    return {"WECHAT_SUBSCRIBE_TEMPLATES": templates, "WECHAT_SUBSCRIBE_FIELDS": fields,
            "WECHAT_MINIPROGRAM_STATE": state}


def validate(config):
    """Refuse to start in production with demo secrets; explain what is missing."""
    if config.get("ENV_NAME") != "production":
        return
    missing = [name for name in REQUIRED_IN_PRODUCTION if not os.environ.get(name)]
    if config.get("SECRET_KEY") == DEV_SECRET_KEY and "SECRET_KEY" not in missing:
        missing.append("SECRET_KEY")
    if missing:
        raise ConfigError(
            "生产模式（DINGHUO_ENV=production）缺少必需的环境变量："
            + "、".join(missing)
            + "。请在启动前设置它们（见 docs/ops/config.md）。"
        )
    if not str(config.get("PASSWORD_HASH_METHOD", "scrypt")).startswith("scrypt"):
        raise ConfigError("PASSWORD_HASH_METHOD 在生产模式必须是 scrypt：其他方式只供测试使用。")
    if len(config["SECRET_KEY"]) < 32:
        raise ConfigError("SECRET_KEY 太短：生产模式至少需要 32 个字符的随机字符串。")
    if len(config.get("WECOM_AES_KEY") or "") != 43:
        raise ConfigError("WECOM_AES_KEY 必须是企业微信后台生成的 43 个字符的 EncodingAESKey。")


# What `flask demo seed` / `demo serve` wrote for the demo (devtools.demo_settings): the
# stand-in's URLs (and, once served, its WeChat Pay test keys) for the demo's database.
DEMO_SETTINGS_FILE = INSTANCE_DIR / "demo-settings.json"


def _demo_settings(env, database_uri):
    """The demo's settings when this process runs on the demo's database — the web, `flask
    notify digest`, `flask rq worker`, any command — so nothing started for the demo talks to
    the real WeChat/WeCom. Never in production; a variable set in the environment still wins."""
    path = DEMO_SETTINGS_FILE
    if env("DINGHUO_ENV") == "production" or not path.is_file():
        return {}
    demo = json.loads(path.read_text(encoding="utf-8"))
    if demo.get("database") != database_uri:
        return {}
    return {key: value for key, value in demo.get("settings", {}).items() if not env(key)}
