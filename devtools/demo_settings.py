"""The demo's settings file (`instance/demo-settings.json`, `app.config.DEMO_SETTINGS_FILE`).

`flask demo seed` writes the local stand-in's URLs into it, `flask demo serve` the URLs of the
stand-in it started and its WeChat Pay test keys. `app.config.from_env` applies the file to any
process on the same database — the web, `flask notify digest`, `flask rq worker` — so nothing
started for the demo sends to the real WeChat, WeCom or WeChat Pay. A variable set in the
environment still wins; production (DINGHUO_ENV=production) never reads it.
"""
import json

from app import config as config_module

DEFAULT_STANDIN_PORT = 5001
DEFAULT_APP_PORT = 5000
# The stand-in's Kuaidi100 customer key (`create_standin_app`'s default) and the demo's salt.
DEMO_KUAIDI100_KEY = "demo-kuaidi100-key"
DEMO_KUAIDI100_SALT = "demo-kuaidi100-salt"


def standin_settings(base_url, app_port=DEFAULT_APP_PORT):
    """What every demo process needs to talk to the stand-in at `base_url` instead of WeChat
    (and Kuaidi100: subscriptions go to the stand-in's /poll, its pushes come back to the app
    served on `app_port`)."""
    return {
        "WECHAT_API_BASE": base_url, "WECOM_API_BASE": base_url, "WECHATPAY_API_BASE": base_url,
        # Subscribe messages from the demo open the developer build of the mini-program.
        "WECHAT_MINIPROGRAM_STATE": "developer",
        "KUAIDI100_URL": f"{base_url}/poll", "KUAIDI100_KEY": DEMO_KUAIDI100_KEY, "KUAIDI100_SALT": DEMO_KUAIDI100_SALT,
        "KUAIDI100_CALLBACK_URL": f"http://127.0.0.1:{app_port}/logistics/kuaidi100/notify",
    }


def write_demo_settings(database_uri, settings):
    """Record `settings` for the demo on `database_uri` (merged with what is there for it)."""
    path = config_module.DEMO_SETTINGS_FILE
    current = {}
    if path.is_file():
        current = json.loads(path.read_text(encoding="utf-8"))
    kept = current.get("settings", {}) if current.get("database") == database_uri else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"database": database_uri, "settings": {**kept, **settings}}
    path.write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
