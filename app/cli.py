"""Flask CLI commands: `flask --app wsgi dealers invite D001 --role buyer`, `orders auto-complete`, ...
(`flask demo seed` / `demo serve` live in devtools/cli.py, registered here when devtools/ is there)."""
import json

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app.dealers.models import ROLE_LABELS
from app.kernel.clock import china_text
from app.kernel.errors import DomainError

dealers_cli = AppGroup("dealers", help="经销商管理")
settings_cli = AppGroup("settings", help="品牌设置")
orders_cli = AppGroup("orders", help="订单")
rebates_cli = AppGroup("rebates", help="返利")
statements_cli = AppGroup("statements", help="对账单")


@dealers_cli.command("invite")
@click.argument("dealer_code")
@click.option("--role", type=click.Choice(["owner", "buyer", "viewer"]), default="owner", show_default=True)
@click.option("--days", type=int, default=None, help="有效天数（默认取 INVITE_TTL_DAYS）")
def dealers_invite(dealer_code, role, days):
    """为经销商生成一次性邀请码（最后一行输出即邀请码）。"""
    from app.dealers.identity import create_invite

    try:
        invite = create_invite(dealer_code=dealer_code, role=role, ttl_days=days)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"经销商 {dealer_code} 的{ROLE_LABELS[role]}邀请码，{china_text(invite.expires_at)} 前有效：")
    click.echo(invite.code)




@dealers_cli.command("show")
@click.argument("dealer_code")
def dealers_show(dealer_code):
    """以 JSON 输出经销商资料（含业务员、信用额度）。"""
    from app.dealers.addresses import region_text
    from app.dealers.models import Dealer
    from app.extensions import db
    from app.funds.service import credit_summary

    dealer = db.session.execute(select(Dealer).where(Dealer.code == dealer_code)).scalar_one_or_none()
    if dealer is None:
        raise click.ClickException(f"经销商 {dealer_code} 不存在")
    out = {
        "code": dealer.code,
        "name": dealer.name,
        "status": dealer.status,
        "tier": {"code": dealer.tier.code, "name": dealer.tier.name},
        "region": {"code": dealer.region_code, "name": region_text(dealer.region_code)},
        "rep": {"name": dealer.rep.name, "wecom_userid": dealer.rep.wecom_userid} if dealer.rep else None,
        "contact": {"name": dealer.contact_name, "phone": dealer.contact_phone},
        "credit": credit_summary(dealer.id),
    }
    click.echo(json.dumps(out, ensure_ascii=False, indent=2))


@settings_cli.command("auto-approval")
@click.option("--on/--off", "enabled", default=None, help="开启或关闭自动审批；都不写则只显示当前设置")
@click.option("--max-total-fen", type=click.IntRange(min=1), default=None,
              help="单笔订单金额上限（分）；开启时不写表示不限金额")
def settings_auto_approval(enabled, max_total_fen):
    """自动审批：经销商正常、信用额度内、未超上限且均为系统价格的订单提交即通过。"""
    from app.orders.approval_rules import get_auto_approval, set_auto_approval

    if enabled is None:
        if max_total_fen is not None:
            raise click.ClickException("设置上限时请同时写 --on（或 --off）")
        click.echo(get_auto_approval().describe())
        return
    try:
        setting = set_auto_approval(enabled=enabled, max_total_fen=max_total_fen)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo("已保存。" + setting.describe())


@settings_cli.command("rebate-usage")
@click.option("--max-rate-bp", type=click.IntRange(0, 10_000), default=None,
              help="返利最多抵扣订单商品金额的比例（基点，3000 = 30%）；不写则只显示当前设置")
def settings_rebate_usage(max_rate_bp):
    """返利抵扣：下单时返利余额最多抵扣商品金额的比例。"""
    from app.funds.checkout import describe_rate, get_rebate_rate, set_rebate_rate

    if max_rate_bp is not None:
        try:
            set_rebate_rate(max_rate_bp=max_rate_bp)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
    rate = get_rebate_rate()
    click.echo(f"返利抵扣：最多抵扣订单商品金额的 {describe_rate(rate)}（{rate} 基点）")


@orders_cli.command("auto-complete")
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="发货满几天自动确认收货（默认取 ORDER_AUTO_COMPLETE_DAYS）")
def orders_auto_complete(days):
    """把全部发货已满 N 天、经销商仍未确认收货的订单改为“已完成”（可重复执行）。"""
    from app.orders.closing import auto_complete_orders

    done = auto_complete_orders(days=days)
    if not done:
        click.echo("没有需要自动确认收货的订单。")
        return
    click.echo(f"已自动确认收货 {len(done)} 笔：{'、'.join(done)}")


@rebates_cli.command("close")
@click.option("--period", required=True, help="结算期间：2026-11（月）、2026Q4（季度）或 2026（年）")
def rebates_close(period):
    """结算一个已结束的期间：按该周期的启用规则计算每个经销商的返利，生成待审核的返利单。
    可重复执行：待审核的返利单重新计算，已审核或已驳回的不变。"""
    from app.rebates.closing import close_period

    try:
        result = close_period(period=period)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    if not result["rules"]:
        click.echo(f"{result['label']}：没有适用于该期间的启用返利规则。")
        return
    for rule in result["rules"]:
        click.echo(f"{result['label']} · {rule['name']}：新生成 {rule['created']} 张，重新计算 {rule['recomputed']} 张，"
                   f"删除 {rule['removed']} 张（已不再达标），已审核未变 {rule['final']} 张")
    click.echo("请在管理后台“返利”页面审核返利单；审核通过后返利计入经销商返利账户。")


policies_cli = AppGroup("policies", help="政策")


@policies_cli.command("publish-due")
def policies_publish_due():
    """发布已到定时发布时间的政策（调度器每分钟执行一次；可重复执行）。"""
    from app.policies.authoring import publish_due_policies

    done = publish_due_policies()
    click.echo(f"已发布 {len(done)} 条政策。" if done else "没有到时间的定时政策。")


def register(app):
    app.cli.add_command(policies_cli)
    _register_demo(app)
    app.cli.add_command(orders_cli)
    app.cli.add_command(rebates_cli)
    app.cli.add_command(dealers_cli)
    app.cli.add_command(settings_cli)
    app.cli.add_command(staff_cli)
    app.cli.add_command(rq_cli)
    app.cli.add_command(notify_cli)
    app.cli.add_command(pay_cli)
    app.cli.add_command(statements_cli)
    app.cli.add_command(campaigns_cli)


def _register_demo(app):
    """`flask demo seed` / `demo serve` come from devtools/ (the stand-ins and the demo data),
    which is not part of the product: without it there is simply no demo command."""
    try:
        from devtools.cli import demo_cli
    except ModuleNotFoundError as exc:
        if exc.name != "devtools":
            raise
        return
    app.cli.add_command(demo_cli)


# --- background workers and notification delivery --------------------------------------

rq_cli = AppGroup("rq", help="RQ 后台任务（需要 REDIS_URL）")
notify_cli = AppGroup("notify", help="通知投递（发件箱）")


@rq_cli.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--worker-class", "kind", type=click.Choice(["simple", "fork"]), default="simple", show_default=True,
              help="simple：在 worker 进程内执行任务（快）；fork：每个任务 fork 一个子进程（RQ 默认；本机实测每任务约 18 ms CPU，投递慢约 7 倍）")
@click.option("--burst", is_flag=True, help="处理完队列中的任务后退出")
@click.option("--no-scheduler", is_flag=True, help="不启动 RQ 调度器（定时任务与重试由其他 worker 的调度器负责）")
@click.option("--name", default=None, help="worker 名称（默认随机）")
def rq_worker(queues, kind, burst, no_scheduler, name):
    """启动 RQ worker：默认处理 high、default、low 三个队列并带调度器，配置与 Web 相同。"""
    from app.jobs import QUEUE_NAMES, run_worker

    if not current_app.config.get("REDIS_URL"):
        raise click.ClickException("未设置 REDIS_URL：没有 Redis 时任务在 Web 进程内执行，不需要 worker。")
    unknown = [q for q in queues if q not in QUEUE_NAMES]
    if unknown:
        raise click.ClickException(f"未知队列：{'、'.join(unknown)}（可用：{'、'.join(QUEUE_NAMES)}）")
    run_worker(list(queues or QUEUE_NAMES), kind=kind, burst=burst, with_scheduler=not no_scheduler, name=name)


@notify_cli.command("failed")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True, help="最多显示几条")
def notify_failed(limit):
    """列出投递失败的通知（含微信 errcode / errmsg）。"""
    from app.notify.delivery import failed_rows

    rows = failed_rows(limit=limit)
    if not rows:
        click.echo("没有投递失败的通知。")
        return
    click.echo(f"{'id':>8}  {'渠道':<12} {'事件':<20} {'接收者':<30} {'尝试':>4}  {'errcode':>8}  errmsg")
    for row in rows:
        errcode = "" if row.last_errcode is None else str(row.last_errcode)
        click.echo(f"{row.id:>8}  {row.channel:<12} {row.event:<20} {row.recipient:<30} {row.attempts:>4}  "
                   f"{errcode:>8}  {row.last_errmsg or ''}")
    click.echo(f"共 {len(rows)} 条（最新在前）。重新投递：flask --app wsgi notify retry <id> 或 --all")


@notify_cli.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="重新投递所有失败的通知")
def notify_retry(ids, retry_all):
    """把投递失败的通知重新排队（按 id，或 --all）。"""
    from app.notify.delivery import retry_failed

    if bool(ids) == retry_all:
        raise click.ClickException("请给出通知 id，或使用 --all（二者选一）。")
    requeued = retry_failed(None if retry_all else ids)
    if not requeued:
        click.echo("没有可重新投递的失败通知。")
        return
    click.echo(f"已重新排队 {len(requeued)} 条：{', '.join(map(str, requeued))}")
    if ids:
        missing = sorted(set(ids) - set(requeued))
        if missing:
            click.echo(f"以下 id 不存在或不是失败状态，未处理：{', '.join(map(str, missing))}")


@notify_cli.command("sweep")
def notify_sweep():
    """立即执行一次发件箱巡检：收回超时未完成的投递，并把到期待投递的通知重新排队。"""
    from app.notify.delivery import sweep

    result = sweep(grace_seconds=0)
    click.echo(f"收回中断的投递 {result['reclaimed']} 条，中断次数用尽转为失败 {result['failed']} 条，"
               f"重新排队 {result['enqueued']} 条。")


@notify_cli.command("digest")
@click.option("--day", default=None, help="统计日期 YYYY-MM-DD（默认昨天，北京时间）")
def notify_digest(day):
    """生成销售日报，写入企业微信群机器人的发送队列（同一天只发一次）。"""
    from datetime import date

    from bots.digest import send_daily_digest

    if day:
        try:
            day = date.fromisoformat(day)
        except ValueError:
            raise click.ClickException(f"日期格式应为 YYYY-MM-DD，例如 2026-11-25，收到的是 {day!r}") from None
    outbox_id = send_daily_digest(day)
    if outbox_id is None:
        click.echo("该日的销售日报已经生成过，不重复发送。")
    else:
        click.echo(f"销售日报已写入发送队列（outbox #{outbox_id}）。")


# --- staff: console accounts ------------------------------------------------------------

staff_cli = AppGroup("staff", help="员工账号（管理后台）")


@staff_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "sales", "finance", "warehouse", "marketing"]), required=True)
@click.option("--name", default=None, help="姓名（默认同用户名）")
@click.option("--wecom-userid", default=None, help="企业微信 UserID（业务员收消息、用订单助手需要）")
@click.password_option("--password", prompt="密码", confirmation_prompt="再输入一次密码", help="不给则交互输入")
def staff_create(username, role, name, wecom_userid, password):
    """创建员工账号（第一个管理员：staff create admin --role admin）。"""
    from app.kernel.permissions import ROLE_LABELS
    from app.staff.service import create_staff

    try:
        staff = create_staff(username=username, name=name, role=role, password=password, wecom_userid=wecom_userid)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"已创建{ROLE_LABELS[staff.role]}账号 {staff.username}，登录地址 /console/login")


# --- WeChat Pay -----------------------------------------------------------------------------

pay_cli = AppGroup("pay", help="微信支付：查询、关闭未支付的预支付单")


@pay_cli.command("open")
def pay_open():
    """列出尚未支付、也未关闭的微信支付预支付单（商户订单号、金额、过期时间）。"""
    from app.funds.payments import list_open_wechat_payments
    from app.kernel.money import format_yuan

    for attempt in list_open_wechat_payments():
        click.echo(f"{attempt.out_trade_no}\t{format_yuan(attempt.amount_fen)}\t过期 {attempt.expires_at:%Y-%m-%d %H:%M} UTC")


@pay_cli.command("query")
@click.argument("out_trade_no")
def pay_query(out_trade_no):
    """向微信支付查询一笔预支付单；已支付但未收到通知的，立即记账。"""
    from app.funds.payments import query_wechat_payment

    try:
        state, outcome = query_wechat_payment(out_trade_no=out_trade_no)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    words = {"recorded": "已记账", "duplicate": "此前已记账", "unpaid": "未支付", "ignored": "未处理"}
    click.echo(f"{out_trade_no}: {state}（{words.get(outcome, outcome)}）")


@pay_cli.command("close")
@click.argument("out_trade_no")
def pay_close(out_trade_no):
    """关闭一笔未支付的预支付单（之后无法再付款；经销商再次付款时会生成新的预支付单）。"""
    from app.funds.payments import close_wechat_payment

    try:
        close_wechat_payment(out_trade_no=out_trade_no)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{out_trade_no}: 已关闭")


# --- statements ------------------------------------------------------------------------------

@statements_cli.command("issue")
@click.option("--month", default=None, help="对账月份 YYYY-MM（北京时间自然月），默认上个月")
def statements_issue(month):
    """为每个正常经销商（以及当月有资金流水的经销商）出具该月对账单；已出具的不会重复或改动。"""
    from app.statements import service as statements

    try:
        result = statements.issue_statements(month=month or statements.previous_month())
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{result['month']} 对账单：新出具 {len(result['created'])} 份，此前已出具 {result['existing']} 份。")
    if result["failed"]:
        raise click.ClickException(
            f"{len(result['failed'])} 个经销商的台账对不上，未出具（经销商 id：{', '.join(map(str, result['failed']))}），详见日志"
        )


# --- WeCom customer groups and campaigns ---------------------------------------------------

campaigns_cli = AppGroup("campaigns", help="客户群与客户群群发")


@campaigns_cli.command("sync-groups")
def campaigns_sync_groups():
    """从企业微信同步所有业务员（群主）的客户群；不再出现的群标记为已解散。"""
    from app.campaigns.groups import sync_groups
    from app.integrations.wechat_errors import WeChatError

    try:
        result = sync_groups()
    except WeChatError as exc:
        raise click.ClickException(f"企业微信返回 {exc.errcode}：{exc.errmsg}") from None
    click.echo(f"群主 {result['owners']} 位，客户群 {result['groups']} 个（新增 {result['new']}，标记解散 {result['dismissed']}）")


@campaigns_cli.command("tick")
def campaigns_tick():
    """执行一次群发定时任务：下发到时的定时群发、查询发送结果、提醒未确认的业务员（可重复执行）。"""
    from app.campaigns.jobs import tick

    result = tick()
    click.echo(f"下发 {result['sent']} 个到时的群发，查询 {result['polled']} 个发送中的群发")
