"""Configuration from environment variables.

Web processes, workers and the CLI all build their config here, so they agree.
`create_app(config)` accepts a mapping of overrides (tests use it).
"""
import os
from pathlib import Path

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"

OFFICIAL_WECHAT_API_BASE = "https://api.weixin.qq.com"
OFFICIAL_WECOM_API_BASE = "https://qyapi.weixin.qq.com"
OFFICIAL_WECHATPAY_API_BASE = "https://api.mch.weixin.qq.com"

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
        # Request bodies above this size answer 413 before any parsing.
        "MAX_CONTENT_LENGTH": _env_int("MAX_CONTENT_LENGTH", 1024 * 1024),
        # WeCom (企业微信): the self-built app that sends rep messages and receives the
        # callback (Token + EncodingAESKey from 接收消息 → 设置API接收), and the internal
        # group robot's webhook key. Where to find each: README 「微信与企业微信设置」.
        "WECOM_CORP_ID": env("WECOM_CORP_ID") or "ww-demo-corpid",
        "WECOM_AGENT_ID": _env_int("WECOM_AGENT_ID", 1000002),
        "WECOM_SECRET": env("WECOM_SECRET") or "demo-wecom-secret",
        "WECOM_TOKEN": env("WECOM_TOKEN") or "demo-wecom-token",
        "WECOM_AES_KEY": env("WECOM_AES_KEY") or "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "WECOM_ROBOT_KEY": env("WECOM_ROBOT_KEY") or "demo-robot-key",
        # Notification delivery (app.notify.delivery): the periodic outbox sweep, how long a
        # worker may hold a row it is sending before the sweep takes it back, and the first
        # back-off wait after a transient WeChat failure (doubled for the next try).
        "OUTBOX_SWEEP_SECONDS": _env_int("OUTBOX_SWEEP_SECONDS", 60),
        "OUTBOX_LEASE_SECONDS": _env_int("OUTBOX_LEASE_SECONDS", 90),
        "OUTBOX_RETRY_BASE_SECONDS": _env_int("OUTBOX_RETRY_BASE_SECONDS", 30),
    }


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
            + "。请在启动前设置它们（见 README 的「配置」一节）。"
        )
    if len(config["SECRET_KEY"]) < 32:
        raise ConfigError("SECRET_KEY 太短：生产模式至少需要 32 个字符的随机字符串。")
    if len(config.get("WECOM_AES_KEY") or "") != 43:
        raise ConfigError("WECOM_AES_KEY 必须是企业微信后台生成的 43 个字符的 EncodingAESKey。")
