import pytest

from app import create_app
from app.config import ConfigError


def test_readyz_reports_database_and_in_process_queue(client):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json["status"] == "ok"
    assert r.json["checks"]["database"]["ok"] is True
    assert r.json["checks"]["queue"] == {"ok": True, "backend": "in-process"}


@pytest.mark.redis
def test_readyz_reports_redis(app, redis_url):
    app.config["REDIS_URL"] = redis_url
    r = app.test_client().get("/readyz")
    assert r.status_code == 200
    assert r.json["checks"]["queue"]["backend"] == "redis"
    assert r.json["checks"]["queue"]["ok"] is True


def test_readyz_is_503_when_redis_is_unreachable(app):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    r = app.test_client().get("/readyz")
    assert r.status_code == 503
    assert r.json["status"] == "degraded"
    assert r.json["checks"]["queue"]["ok"] is False


def test_healthz_answers_without_touching_the_database_or_redis(app, client, monkeypatch):
    from app.extensions import db

    def no_io(*args, **kwargs):
        raise AssertionError("/healthz must not do I/O")

    monkeypatch.setattr(db.session, "execute", no_io)
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json == {"status": "ok"}


def test_readyz_reports_migrations_at_head(client):
    r = client.get("/readyz")
    migrations = r.json["checks"]["migrations"]
    assert migrations["ok"] is True and migrations["current"] == migrations["head"] and migrations["head"]


def test_readyz_is_503_when_migrations_are_not_at_head(client):
    from sqlalchemy import text

    from app.extensions import db

    db.session.execute(text("UPDATE alembic_version SET version_num = '0019'"))
    db.session.commit()
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json["status"] == "degraded"
    migrations = r.json["checks"]["migrations"]
    assert migrations["ok"] is False and migrations["current"] == ["0019"]
    assert "db upgrade" in migrations["error"]
    assert r.json["checks"]["database"]["ok"] is True
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_is_503_when_the_database_is_unreachable():
    unreachable = create_app({"ENV_NAME": "test", "TESTING": True, "REDIS_URL": None,
                              "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    r = unreachable.test_client().get("/readyz")
    assert r.status_code == 503 and r.json["status"] == "degraded"
    assert r.json["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    assert r.json["checks"]["migrations"]["ok"] is False
    assert unreachable.test_client().get("/healthz").status_code == 200


@pytest.mark.postgres
def test_readyz_on_postgresql(pg_client):
    r = pg_client.get("/readyz")
    assert r.json["checks"]["database"]["backend"] == "postgresql"


PRODUCTION_WECOM = {
    "WECOM_SECRET": "wecom-app-secret",
    "WECOM_TOKEN": "callbacktoken",
    "WECOM_AES_KEY": "a" * 43,
}


def set_production_wecom(monkeypatch):
    for name, value in PRODUCTION_WECOM.items():
        monkeypatch.setenv(name, value)


def test_production_refuses_to_start_without_secrets(monkeypatch):
    for name in ("SECRET_KEY", "WECHAT_APP_ID", "WECHAT_APP_SECRET", *PRODUCTION_WECOM):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DINGHUO_ENV", "production")
    with pytest.raises(ConfigError) as exc:
        create_app()
    message = str(exc.value)
    assert "SECRET_KEY" in message and "WECHAT_APP_SECRET" in message and "缺少" in message
    assert all(name in message for name in PRODUCTION_WECOM)


def test_production_refuses_a_malformed_encoding_aes_key(monkeypatch):
    monkeypatch.setenv("DINGHUO_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("WECHAT_APP_ID", "wx123")
    monkeypatch.setenv("WECHAT_APP_SECRET", "s")
    set_production_wecom(monkeypatch)
    monkeypatch.setenv("WECOM_AES_KEY", "too-short")
    with pytest.raises(ConfigError, match="WECOM_AES_KEY"):
        create_app()


def test_wecom_demo_defaults():
    config = create_app().config
    assert config["WECOM_AGENT_ID"] == 1000002
    assert len(config["WECOM_AES_KEY"]) == 43
    assert config["WECOM_ROBOT_KEY"] and config["WECOM_SECRET"]


def test_production_refuses_a_short_secret_key(monkeypatch):
    monkeypatch.setenv("DINGHUO_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "short")
    monkeypatch.setenv("WECHAT_APP_ID", "wx123")
    monkeypatch.setenv("WECHAT_APP_SECRET", "s")
    set_production_wecom(monkeypatch)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_production_starts_with_everything_set(monkeypatch, tmp_path):
    monkeypatch.setenv("DINGHUO_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("WECHAT_APP_ID", "wx123")
    monkeypatch.setenv("WECHAT_APP_SECRET", "s")
    set_production_wecom(monkeypatch)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.sqlite3")
    app = create_app()
    assert app.config["WECHAT_API_BASE"] == "https://api.weixin.qq.com"


def test_production_refuses_the_test_suites_cheap_password_hash(monkeypatch, tmp_path):
    monkeypatch.setenv("DINGHUO_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("WECHAT_APP_ID", "wx123")
    monkeypatch.setenv("WECHAT_APP_SECRET", "s")
    set_production_wecom(monkeypatch)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.sqlite3")
    with pytest.raises(ConfigError, match="PASSWORD_HASH_METHOD"):
        create_app({"PASSWORD_HASH_METHOD": "pbkdf2:sha256:1"})
    assert create_app().config["PASSWORD_HASH_METHOD"] == "scrypt"


def test_postgres_urls_use_psycopg3(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"


def test_outbound_bases_are_configurable(monkeypatch):
    monkeypatch.setenv("WECHAT_API_BASE", "http://127.0.0.1:9/")
    monkeypatch.setenv("WECOM_API_BASE", "http://127.0.0.1:8")
    monkeypatch.setenv("WECHATPAY_API_BASE", "http://127.0.0.1:7")
    app = create_app()
    assert (app.config["WECHAT_API_BASE"], app.config["WECOM_API_BASE"], app.config["WECHATPAY_API_BASE"]) == (
        "http://127.0.0.1:9", "http://127.0.0.1:8", "http://127.0.0.1:7")
