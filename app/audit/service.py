"""The audit log: every change staff make to prices, credit limits, dealer status, stock and
orders is recorded here — who, when, what, and the values before and after.

Services call `record(...)` inside their own write transaction, so the entry commits or rolls
back with the change it describes. Values must be JSON-friendly (ints, strings, bools, None,
ISO dates); money stays integer fen.
"""
from datetime import date, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import func, insert, select

from app.audit.models import AuditEntry
from app.database import write_transaction
from app.extensions import db
from app.kernel import settings
from app.kernel.clock import utcnow
from app.kernel.permissions import require

AUDIT_PAGE_SIZE = 50

# What each action means, for people reading the log.
ACTION_LABELS = {
    "order.approve": "审批通过订单",
    "order.approve_rep": "业务员审批（超出额度，待财务复核）",
    "order.reject": "驳回订单",
    "order.cancel": "取消订单",
    "order.ship": "订单发货",
    "order.complete": "订单完成",
    "return.approve": "同意退货",
    "return.reject": "拒绝退货",
    "return.receive": "退货入库",
    "return.close": "结束退货",
    "refund.retry": "重试退款",
    "statement.resolve": "处理对账单异议",
    "dealer.create": "新建经销商",
    "dealer.update": "修改经销商",
    "dealer.suspend": "暂停经销商",
    "dealer.reactivate": "恢复经销商",
    "dealer.invite": "生成邀请码",
    "credit.limit": "调整信用额度",
    "price.set": "设置价格",
    "price.delete": "删除价格",
    "price_list.save": "保存价格表",
    "sku.create": "新建商品",
    "sku.update": "修改商品",
    "sku.image_upload": "上传商品图片",
    "sku.image_remove": "删除商品图片",
    "visibility.save": "修改可见性规则",
    "category.create": "新建商品分类",
    "category.rename": "重命名商品分类",
    "stock.adjust": "库存调整",
    "stock.threshold": "修改低库存阈值",
    "settings.auto_approval": "修改自动审批规则",
    "settings.rebate_usage": "修改返利抵扣比例",
    "settings.delivery_completes_order": "修改快递签收后自动完成订单",
    "tracking.resubscribe": "重新订阅物流跟踪",
    "payment.offline_confirm": "确认线下付款到账",
    "payment.offline_reject": "驳回线下付款",
    "ledger.adjust": "手工调整资金账户",
    "import": "Excel 导入",
    "sales_target.set": "设置销售目标",
    "sales_target.remove": "删除销售目标",
    "rebate_rule.create": "新建返利规则",
    "rebate_rule.update": "修改返利规则",
    "rebate.close": "返利期间结算",
    "rebate.approve": "审核通过返利单（入账）",
    "rebate.reject": "驳回返利单",
    "groups.sync": "同步客户群",
    "groups.map": "客户群对应经销商",
    "campaign.create": "新建客户群群发",
    "campaign.schedule": "定时客户群群发",
    "campaign.send": "立即发送客户群群发",
    "campaign.cancel": "取消客户群群发",
    "campaign.retry": "重试客户群群发",
    "policy.create": "新建政策",
    "policy.update": "修改政策",
    "policy.schedule": "定时发布政策",
    "policy.unschedule": "取消定时发布",
    "policy.publish": "发布政策",
    "policy.withdraw": "撤回政策",
    "policy.remind": "提醒经销商阅读政策",
    "material.create": "新建素材",
    "material.update": "修改素材",
    "material.publish": "发布素材",
    "material.withdraw": "撤回素材",
    "staff.lock": "锁定员工账号（密码连续错误）",
    "staff.unlock": "解锁员工账号",
    "staff.create": "新建员工账号",
    "staff.update": "修改员工账号",
    "staff.role": "修改员工角色",
    "staff.password_reset": "重置员工密码",
    "staff.deactivate": "停用员工账号",
    "staff.reactivate": "启用员工账号",
    "tier.create": "新建经销商等级",
    "tier.update": "修改经销商等级",
    "tier.delete": "删除经销商等级",
    "region.create": "新增地区",
    "region.rename": "重命名地区",
    "warehouse.create": "新建仓库",
    "warehouse.update": "修改仓库",
    "warehouse.deactivate": "停用仓库",
    "warehouse.reactivate": "启用仓库",
}

ENTITY_LABELS = {
    "order": "订单",
    "return": "退货单",
    "statement": "对账单",
    "dealer": "经销商",
    "credit": "信用额度",
    "price_list": "价格表",
    "sku": "商品",
    "category": "商品分类",
    "stock": "库存",
    "settings": "系统设置",
    "offline_payment": "线下付款",
    "ledger": "资金账户",
    "import": "Excel 导入",
    "rebate_rule": "返利规则",
    "rebate": "返利单",
    "customer_group": "客户群",
    "campaign": "客户群群发",
    "policy": "政策",
    "material": "营销素材",
    "staff": "员工账号",
    "tier": "经销商等级",
    "region": "地区",
    "warehouse": "仓库",
}


# How the audit page names the recorded fields; unknown keys are shown as they are.
FIELD_LABELS = {
    "status": "状态", "name": "名称", "code": "编码", "tier": "等级", "tier_code": "等级", "region": "地区",
    "region_code": "地区编码", "rep": "业务员", "contact_name": "联系人", "contact_phone": "联系电话",
    "payment_terms_days": "账期（天）", "contract_start": "合同开始", "contract_end": "合同结束",
    "annual_target_fen": "年度目标", "credit_limit_fen": "信用额度", "price_fen": "价格", "list_price_fen": "目录价",
    "qty": "数量", "on_hand": "在手库存", "low_stock_qty": "低库存阈值", "moq": "起订量", "step": "订购倍数",
    "pack_size": "每箱数量", "unit": "单位", "spec": "规格", "image_url": "图片", "image_key": "上传的图片", "category_id": "分类",
    "valid_from": "生效日期", "valid_to": "失效日期", "sku": "商品", "sku_code": "商品编码", "warehouse": "仓库",
    "carrier": "承运商", "tracking_no": "运单号", "enabled": "启用", "max_total_fen": "金额上限",
    "max_rate_bp": "返利抵扣比例（基点）",
    "refund_fen": "应退金额", "amount_fen": "金额", "received_fen": "实收金额", "applied_fen": "计入订单",
    "account": "账户", "balance_after_fen": "调整后余额", "payment_id": "付款记录", "order_no": "订单号",
    "transfer_date": "转账日期", "refund_status": "退款状态", "out_refund_no": "退款单号", "failure": "失败原因",
    "rules": "规则", "invite_role": "邀请角色", "expires_at": "到期时间",
    "period_kind": "结算周期", "basis": "计算基数", "scope": "商品范围", "applies_to": "适用经销商",
    "tiers": "返利档位（门槛分, 基点）", "targets": "范围与对象", "growth": "增长返利（门槛基点, 基点, 去年最低分）",
    "active": "启用", "period": "期间", "rebate_fen": "返利金额", "dealer_id": "经销商 ID", "rule_id": "规则 ID",
    "created": "新生成", "recomputed": "重新计算", "removed": "删除草稿", "final": "已审核（未变）",
    "dispute_comment": "异议说明", "resolution_note": "处理说明",
    "title": "标题", "audience": "受众", "attachments": "附件数", "scheduled_at": "定时发送", "sender": "发送人",
    "dealer": "经销商", "owners": "群主数", "groups": "客户群数", "new": "新增", "dismissed": "标记解散",
    "stopped_tasks": "停止的任务", "stop_failed": "停止失败",
    "kind": "类型", "summary": "简介", "tags": "标签", "link_url": "链接地址",
    "mp_appid": "小程序 AppID", "mp_path": "小程序页面路径", "file_name": "文件名", "body_chars": "正文字符数",
    "has_cover": "有封面图", "locked_until": "锁定至",
    "username": "用户名", "role": "角色", "wecom_userid": "企业微信 UserID", "phone": "手机号", "rank": "排序",
    "parent_code": "上级地区", "priority": "发货优先级",
}


def _status_labels(entity_type):
    from app.campaigns.models import CAMPAIGN_STATUS_LABELS
    from app.catalog.models import SKU_STATUS_LABELS
    from app.dealers.models import DEALER_STATUS_LABELS
    from app.funds.models import OFFLINE_STATUS_LABELS
    from app.materials.models import STATUS_LABELS as MATERIAL_STATUS
    from app.orders.models import STATUS_LABELS as ORDER_STATUS
    from app.rebates.models import DOCUMENT_STATUS_LABELS as REBATE_STATUS
    from app.returns.models import STATUS_LABELS as RETURN_STATUS
    from app.statements.models import STATUS_LABELS as STATEMENT_STATUS

    return {
        "order": ORDER_STATUS, "return": RETURN_STATUS, "sku": SKU_STATUS_LABELS,
        "dealer": DEALER_STATUS_LABELS, "offline_payment": OFFLINE_STATUS_LABELS, "rebate": REBATE_STATUS,
        "statement": STATEMENT_STATUS, "campaign": CAMPAIGN_STATUS_LABELS, "material": MATERIAL_STATUS,
    }.get(entity_type, {})


def field_label(key):
    return FIELD_LABELS.get(key, key)


def display_value(key, value, entity_type=None):
    """A recorded value as a person reads it: fen as yuan, statuses in Chinese, booleans as 是/否."""
    from app.kernel.money import format_yuan

    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if key.endswith("_fen") and isinstance(value, int):
        return format_yuan(value)
    if key == "status" and isinstance(value, str):
        return _status_labels(entity_type).get(value, value)
    if key == "account" and isinstance(value, str):
        from app.funds.models import ACCOUNT_LABELS

        return ACCOUNT_LABELS.get(value, value)
    if key == "role" and entity_type == "staff" and isinstance(value, str):
        from app.kernel.permissions import ROLE_LABELS as STAFF_ROLE_LABELS

        return STAFF_ROLE_LABELS.get(value, value)
    if key == "invite_role" and isinstance(value, str):
        from app.dealers.models import ROLE_LABELS

        return ROLE_LABELS.get(value, value)
    return value


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def changed(before, after):
    """Only the keys whose values differ: (before, after) dicts for the log."""
    before, after = before or {}, after or {}
    keys = [k for k in {**before, **after} if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def entry_values(*, actor, action, entity_type, entity_id, label="", before=None, after=None, reason=None):
    """The column values of one audit entry (see `record`)."""
    if action not in ACTION_LABELS:
        raise ValueError(f"unknown audit action {action!r}")
    return {
        "staff_id": getattr(actor, "id", None) if actor.__class__.__name__ == "Staff" else None,
        "actor_name": (getattr(actor, "name", None) or "系统")[:64],
        "action": action,
        "entity_type": entity_type,
        "entity_id": str(entity_id)[:64],
        "entity_label": (label or "")[:128],
        "before": _plain(before),
        "after": _plain(after),
        "reason": (reason or None) and reason[:200],
    }


def record(session, *, actor, action, entity_type, entity_id, label="", before=None, after=None, reason=None):
    """Add an audit entry to `session`'s transaction (the caller commits). `actor` is a Staff
    row, or anything with `id` and `name` (the system actor has id None)."""
    entry = AuditEntry(**entry_values(actor=actor, action=action, entity_type=entity_type, entity_id=entity_id,
                                      label=label, before=before, after=after, reason=reason))
    session.add(entry)
    return entry


def record_many(session, entries):
    """`record` for many entries at once (dicts of `record`'s keyword arguments, `actor` in
    each), for batch changes such as an import, where thousands of ORM objects would cost
    seconds: one multi-row INSERT, on PostgreSQL one statement with the columns as arrays."""
    rows = [{**entry_values(**entry), "created_at": utcnow()} for entry in entries]
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        _record_many_pg(session, rows)
    else:
        session.execute(insert(AuditEntry), rows)


# PostgreSQL: all the rows in one statement of constant text, the columns as arrays. A
# multi-row VALUES of 5,000 entries makes psycopg parse 50,000 placeholders (most of the time).
_RECORD_MANY_PG = (
    "INSERT INTO audit_log (staff_id, actor_name, action, entity_type, entity_id, entity_label,"
    " before, after, reason, created_at)"
    " SELECT * FROM unnest(CAST(%(staff_id)s AS bigint[]), CAST(%(actor_name)s AS text[]), CAST(%(action)s AS text[]),"
    " CAST(%(entity_type)s AS text[]), CAST(%(entity_id)s AS text[]), CAST(%(entity_label)s AS text[]),"
    " CAST(%(before)s AS json[]), CAST(%(after)s AS json[]), CAST(%(reason)s AS text[]),"
    " CAST(%(created_at)s AS timestamptz[]))"
)


def _record_many_pg(session, rows):
    import json

    def as_json(value):
        return None if value is None else json.dumps(value, ensure_ascii=False)

    columns = {key: [row[key] for row in rows] for key in rows[0]}
    columns["before"] = [as_json(v) for v in columns["before"]]
    columns["after"] = [as_json(v) for v in columns["after"]]
    session.flush()  # entries already added one by one come first
    session.connection().exec_driver_sql(_RECORD_MANY_PG, columns)


def list_entries(*, entity_type=None, entity_id=None, staff_id=None, action=None, day_from=None, day_to=None,
                 page=1, page_size=AUDIT_PAGE_SIZE):
    """Newest first, with the total: ([AuditEntry], total). `day_from`/`day_to` are China dates
    (inclusive)."""
    from app.kernel.clock import business_day_start

    query = select(AuditEntry)
    if entity_type:
        query = query.where(AuditEntry.entity_type == entity_type)
    if entity_id:
        query = query.where(AuditEntry.entity_id == str(entity_id))
    if staff_id:
        query = query.where(AuditEntry.staff_id == staff_id)
    if action:
        query = query.where(AuditEntry.action == action)
    if day_from:
        query = query.where(AuditEntry.created_at >= business_day_start(day_from))
    if day_to:
        query = query.where(AuditEntry.created_at < business_day_start(day_to + timedelta(days=1)))
    total = db.session.execute(query.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)).scalar_one()
    rows = db.session.execute(
        query.order_by(AuditEntry.id.desc()).limit(page_size).offset((page - 1) * page_size)
    ).scalars().all()
    return rows, total


# Who changed a brand setting when it was not a console user (the `flask settings` command).
CLI_ACTOR = SimpleNamespace(id=None, name="命令行")


def change_setting(setting, value, *, actor, refused):
    """Write the brand setting `setting` (declared in `app.kernel.settings`) in a transaction of
    its own, with an audit entry `settings.<key>` whose before/after are the setting's stored
    shape. `actor` is the staff member, who needs `settings.edit` (403 with `refused`), or None
    for the CLI (recorded as 命令行). 422 `invalid_setting` for a value the setting refuses."""
    if actor is not None:
        require(actor, "settings.edit", refused)
    with write_transaction() as session:
        before = settings.read(session, setting)
        settings.write(session, setting, value)
        record(session, actor=actor or CLI_ACTOR, action=f"settings.{setting.key}", entity_type="settings",
               entity_id=setting.key, label=setting.label, before=setting.dump(before), after=setting.dump(value))
    return value
