"""The demo's CLI commands, registered by app/cli.py when devtools/ is there:

    flask --app wsgi demo seed [--reset] [--if-empty]   write the demo brand (devtools.demo)
    flask --app wsgi demo serve [--port] [--standin-port]   the stand-ins and the API in one process

Both write `instance/demo-settings.json` (`devtools.demo_settings`): every other command on the
demo's database — `notify digest`, `rq worker` — then talks to the stand-in too, never to WeChat.

The stand-ins and the demo data are imported inside the commands, so loading the CLI stays light.
"""
import os

import click
from flask import current_app
from flask.cli import AppGroup

from app.kernel.errors import DomainError

demo_cli = AppGroup("demo", help="演示数据与本地演示环境")


@demo_cli.command("seed")
@click.option("--reset", is_flag=True, help="先清空业务数据再写入演示数据")
@click.option("--if-empty", is_flag=True, help="数据库已有数据时跳过（不报错）")
def demo_seed(reset, if_empty):
    """写入演示品牌：等级、经销商、商品、仓库库存、价格表、信用额度、业务员和邀请码。"""
    from devtools.demo import seed_demo

    try:
        summary = seed_demo(reset=reset)
    except DomainError as exc:
        if if_empty and exc.code == "demo_exists":
            _point_the_demo_at_the_standin()
            click.echo("数据库中已有数据，跳过演示数据写入。获取新的邀请码：.venv/bin/flask --app wsgi dealers invite D001")
            return
        raise click.ClickException(exc.message) from None
    _point_the_demo_at_the_standin()
    for line in summary["lines"]:
        click.echo(line)


def _point_the_demo_at_the_standin(base_url=None, extra=None, database_uri=None, app_port=None):
    """Every later command on this database (`notify digest`, `rq worker`, …) talks to the
    local stand-in, never to the real WeChat/WeCom/Kuaidi100 (`devtools.demo_settings`)."""
    from devtools.demo_settings import DEFAULT_APP_PORT, DEFAULT_STANDIN_PORT, standin_settings, write_demo_settings

    base_url = base_url or f"http://127.0.0.1:{DEFAULT_STANDIN_PORT}"
    settings = {**standin_settings(base_url, app_port or DEFAULT_APP_PORT), **(extra or {})}
    write_demo_settings(database_uri or current_app.config["SQLALCHEMY_DATABASE_URI"], settings)
    return settings


@demo_cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--standin-port", default=5001, show_default=True, type=int)
def demo_serve(host, port, standin_port):
    """启动本地微信模拟服务和 API（演示用，单进程，任务在进程内执行）。"""
    app, standin = start_demo(current_app.config, port=port, standin_port=standin_port)
    click.echo(f"本地微信模拟服务：{standin.base_url}/  （在此页面获取登录 code、查看送达的通知）")
    click.echo(f"小程序 API：http://{host}:{port}/api/mp/v1  （接口文档 /api/mp/v1/openapi.json）")
    # Flask refuses app.run() inside a CLI command; serve with werkzeug directly.
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True, use_reloader=False)


def start_demo(config, *, port, standin_port, key_dir=None):
    """What `demo serve` runs before it serves: the stand-in started on `standin_port` with the
    reps' customer groups, the demo pointed at it (WeChat Pay test keys in `key_dir`, by default
    instance/wechatpay-demo/), and the API app that will answer on `port`, its WeCom callback
    connected. Returns (app, standin); the caller serves the app (tests/test_docs_curls.py in a thread)."""
    from app import create_app
    from devtools.standin import StandinServer

    standin = StandinServer.start(
        host="127.0.0.1",
        port=standin_port,
        app_id=config["WECHAT_APP_ID"],
        secret=config["WECHAT_APP_SECRET"],
        corp_id=config["WECOM_CORP_ID"],
        corp_secret=config["WECOM_SECRET"],
        agent_id=config["WECOM_AGENT_ID"],
        robot_keys=(config["WECOM_ROBOT_KEY"],),
    )
    from devtools.demo_activity import DEMO_CUSTOMER_GROUPS

    for chat_id, name, owner, _, members in DEMO_CUSTOMER_GROUPS:  # the reps' groups in the pretend WeCom
        standin.add_customer_group(name, owner, external_members=members, chat_id=chat_id)
    # This process and every other one on the demo's database (a worker, `notify digest`) use
    # the stand-in; a variable set in the environment keeps its value.
    settings = _point_the_demo_at_the_standin(standin.base_url, _demo_wechatpay(standin, port, config, key_dir),
                                             config["SQLALCHEMY_DATABASE_URI"], app_port=port)
    if os.environ.get("WECHAT_MINIPROGRAM_STATE"):
        del settings["WECHAT_MINIPROGRAM_STATE"]
    app = create_app(settings)
    # The stand-in pushes simulated rep taps and messages to our WeCom callback.
    standin.connect_callback(f"http://127.0.0.1:{port}/wecom/callback", config["WECOM_TOKEN"], config["WECOM_AES_KEY"])
    return app, standin


def _demo_wechatpay(standin, port, config, key_dir=None):
    """WeChat Pay for the demo: test keys generated into instance/wechatpay-demo/ on first
    run (a merchant key pair, and a platform key pair only the stand-in signs with), the
    stand-in as WeChat Pay, notifications to this server. Returns the WECHATPAY_* settings."""
    from pathlib import Path

    from app.config import INSTANCE_DIR
    from app.integrations.wechatpay import generate_keys

    directory = Path(key_dir) if key_dir else INSTANCE_DIR / "wechatpay-demo"
    names = ("merchant_private_key", "merchant_public_key", "platform_private_key", "platform_public_key")
    keys = {name: str(directory / f"wechatpay_{name}.pem") for name in names}
    if not all(Path(path).exists() for path in keys.values()):
        keys = generate_keys(directory)
        click.echo(f"已为演示生成微信支付测试密钥：{directory}")
    settings = {
        "WECHATPAY_API_BASE": standin.base_url, "WECHATPAY_MCHID": "1900000109",
        "WECHATPAY_APPID": config["WECHAT_APP_ID"], "WECHATPAY_PRIVATE_KEY": keys["merchant_private_key"],
        "WECHATPAY_CERT_SERIAL_NO": "DEMO0000000000000000000000000001", "WECHATPAY_APIV3_KEY": "demo-apiv3-key-not-secret-000000",
        "WECHATPAY_PUBLIC_KEY": keys["platform_public_key"], "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_DEMO",
        "WECHATPAY_NOTIFY_URL": f"http://127.0.0.1:{port}/pay/wechat/notify",
    }
    standin.pay.configure(
        mchid=settings["WECHATPAY_MCHID"], appid=settings["WECHATPAY_APPID"],
        merchant_public_key=Path(keys["merchant_public_key"]).read_text(),
        merchant_serial_no=settings["WECHATPAY_CERT_SERIAL_NO"], apiv3_key=settings["WECHATPAY_APIV3_KEY"],
        platform_private_key=Path(keys["platform_private_key"]).read_text(),
        platform_public_key_id=settings["WECHATPAY_PUBLIC_KEY_ID"],
    )
    return settings
