"""Rebate rules (返利规则): creating, changing, listing and describing them.

A rule has a period kind, a basis (shipped or paid), a product scope, the dealers it applies
to, volume tiers (threshold fen, rate bp) and an optional growth rebate; what a rule earns is
`app.rebates.computation`'s. The console's form (yuan and %) is read in `console.rebates`.
"""
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.audit import service as audit
from app.catalog.models import Category, Sku
from app.database import write_transaction
from app.dealers.models import Dealer, Tier
from app.extensions import db
from app.kernel.clock import utcnow
from app.kernel.errors import NotFound
from app.kernel.inputs import choice, day, integer, invalid, text
from app.kernel.money import format_yuan, percent_text
from app.kernel.permissions import require
from app.rebates.models import (
    APPLIES_LABELS,
    BASIS_LABELS,
    PERIOD_LABELS,
    SCOPE_LABELS,
    RebateRule,
    RebateTarget,
    RebateTier,
)

MAX_TIERS = 10
MAX_TARGETS = 500


def _resolve(session, model, column, values, field, what):
    values = list(dict.fromkeys(values))
    if len(values) > MAX_TARGETS:
        raise invalid(field, f"{what}最多 {MAX_TARGETS} 个")
    found = dict(session.execute(select(column, model.id).where(column.in_(values))).all()) if values else {}
    missing = [str(v) for v in values if v not in found]
    if missing:
        raise invalid(field, f"以下{what}不存在：{'、'.join(missing[:20])}")
    return [found[v] for v in values]


def _clean_rule(session, *, name, period_kind, basis, scope="all", category_ids=(), sku_ids=(), sku_codes=(),
                applies_to="all", tier_ids=(), dealer_ids=(), dealer_codes=(), valid_from, valid_to=None, tiers,
                growth=None, active=True):
    clean = {
        "name": text(name, field="name", label="规则名称", max_len=64),
        "period_kind": choice(period_kind, field="period_kind", label="结算周期", choices=PERIOD_LABELS),
        "basis": choice(basis, field="basis", label="计算基数", choices=BASIS_LABELS),
        "scope": choice(scope, field="scope", label="商品范围", choices=SCOPE_LABELS),
        "applies_to": choice(applies_to, field="applies_to", label="适用经销商", choices=APPLIES_LABELS),
        "valid_from": day(valid_from, field="valid_from", label="生效日期"),
        "valid_to": day(valid_to, field="valid_to", label="失效日期", required=False),
        "active": bool(active),
    }
    if clean["valid_to"] and clean["valid_to"] < clean["valid_from"]:
        raise invalid("valid_to", "失效日期不能早于生效日期")
    if not tiers:
        raise invalid("tiers", "至少填写一档返利（门槛金额与返利比例）")
    if len(tiers) > MAX_TIERS:
        raise invalid("tiers", f"最多 {MAX_TIERS} 档")
    typed = sorted(
        (integer(threshold, field="tiers", label="门槛金额（分）", minimum=0, maximum=10**14),
         integer(rate, field="tiers", label="返利比例（基点）", minimum=1, maximum=10_000))
        for threshold, rate in tiers
    )
    checked = []
    for threshold, rate in typed:
        if checked and threshold == checked[-1][0]:
            raise invalid("tiers", f"两档的门槛金额相同：{format_yuan(threshold)}")
        if checked and rate < checked[-1][1]:
            raise invalid("tiers", f"门槛 {format_yuan(threshold)} 的返利比例不能低于较低一档")
        checked.append((threshold, rate))
    clean["tiers"] = checked
    clean["growth"] = None
    if growth is not None:
        threshold_bp, rate_bp, minimum = growth
        clean["growth"] = (
            integer(threshold_bp, field="growth", label="增长率门槛（基点）", minimum=0, maximum=10**6),
            integer(rate_bp, field="growth", label="额外返利比例（基点）", minimum=1, maximum=10_000),
            integer(minimum, field="growth", label="去年同期最低金额（分）", minimum=1, maximum=10**14),
        )
    targets = []
    if clean["scope"] == "categories":
        cats = _resolve(session, Category, Category.id, category_ids, "category_ids", "商品分类")
        if not cats:
            raise invalid("category_ids", "商品范围为“指定分类”时请至少选择一个分类")
        targets += [("category", c) for c in cats]
    elif clean["scope"] == "skus":
        skus = _resolve(session, Sku, Sku.id, sku_ids, "sku_codes", "商品") + \
            _resolve(session, Sku, Sku.code, sku_codes, "sku_codes", "商品编码")
        if not skus:
            raise invalid("sku_codes", "商品范围为“指定商品”时请至少填写一个商品编码")
        targets += [("sku", s) for s in dict.fromkeys(skus)]
    if clean["applies_to"] == "tiers":
        tiers_ = _resolve(session, Tier, Tier.id, tier_ids, "tier_ids", "经销商等级")
        if not tiers_:
            raise invalid("tier_ids", "适用“指定等级”时请至少选择一个等级")
        targets += [("tier", t) for t in tiers_]
    elif clean["applies_to"] == "dealers":
        dealers = _resolve(session, Dealer, Dealer.id, dealer_ids, "dealer_codes", "经销商") + \
            _resolve(session, Dealer, Dealer.code, dealer_codes, "dealer_codes", "经销商编码")
        if not dealers:
            raise invalid("dealer_codes", "适用“指定经销商”时请至少填写一个经销商编码")
        targets += [("dealer", d) for d in dict.fromkeys(dealers)]
    clean["targets"] = targets
    return clean


def _audit_view(rule):
    return {
        "name": rule.name, "period_kind": rule.period_kind, "basis": rule.basis, "scope": rule.scope,
        "applies_to": rule.applies_to, "valid_from": rule.valid_from, "valid_to": rule.valid_to,
        "tiers": [[t.threshold_fen, t.rate_bp] for t in sorted(rule.tiers, key=lambda t: t.threshold_fen)],
        "targets": sorted([t.kind, t.target_id] for t in rule.targets),
        "growth": [rule.growth_threshold_bp, rule.growth_rate_bp, rule.growth_min_last_year_fen]
        if rule.growth_rate_bp is not None else None,
        "active": rule.active,
    }


def _apply(rule, clean, now):
    for key in ("name", "period_kind", "basis", "scope", "applies_to", "valid_from", "valid_to", "active"):
        setattr(rule, key, clean[key])
    growth = clean["growth"] or (None, None, None)
    rule.growth_threshold_bp, rule.growth_rate_bp, rule.growth_min_last_year_fen = growth
    rule.tiers = [RebateTier(threshold_fen=t, rate_bp=r) for t, r in clean["tiers"]]
    rule.targets = [RebateTarget(kind=k, target_id=i) for k, i in clean["targets"]]
    rule.updated_at = now


def create_rule(*, staff, **fields):
    """A new rule (admin/finance), audited. Fields: name, period_kind, basis, scope
    (+ category_ids / sku_ids or sku_codes), applies_to (+ tier_ids / dealer_ids or
    dealer_codes), valid_from, valid_to, tiers [(threshold_fen, rate_bp)], growth
    (threshold_bp, rate_bp, min_last_year_fen) or None, active. 422 `invalid_field`."""
    require(staff, "rebates.manage", "你没有配置返利规则的权限（仅管理员与财务）")
    with write_transaction() as session:
        clean = _clean_rule(session, **fields)
        now = utcnow()
        rule = RebateRule(created_at=now)
        _apply(rule, clean, now)
        session.add(rule)
        session.flush()
        audit.record(session, actor=staff, action="rebate_rule.create", entity_type="rebate_rule", entity_id=rule.id,
                     label=rule.name, after=_audit_view(rule))
    return rule


def update_rule(*, staff, rule_id, **fields):
    """Change a rule (admin/finance), audited with the values before and after. Documents
    already computed keep what they copied; the next close of a period uses the new rule."""
    require(staff, "rebates.manage", "你没有配置返利规则的权限（仅管理员与财务）")
    with write_transaction() as session:
        rule = session.execute(
            select(RebateRule).where(RebateRule.id == rule_id).with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if rule is None:
            raise NotFound("返利规则不存在", "rebate_rule_not_found")
        clean = _clean_rule(session, **fields)
        before = _audit_view(rule)
        # The old tiers and targets go first: a kept threshold would collide with its replacement.
        rule.tiers.clear()
        rule.targets.clear()
        session.flush()
        _apply(rule, clean, utcnow())
        session.flush()
        old, new = audit.changed(before, _audit_view(rule))
        audit.record(session, actor=staff, action="rebate_rule.update", entity_type="rebate_rule", entity_id=rule.id,
                     label=rule.name, before=old, after=new)
    return rule


def list_rules():
    return db.session.execute(
        select(RebateRule).options(selectinload(RebateRule.tiers), selectinload(RebateRule.targets))
        .order_by(RebateRule.active.desc(), RebateRule.id)
    ).scalars().all()


def get_rule(rule_id):
    rule = db.session.execute(
        select(RebateRule).options(selectinload(RebateRule.tiers), selectinload(RebateRule.targets))
        .where(RebateRule.id == rule_id)
    ).scalar_one_or_none()
    if rule is None:
        raise NotFound("返利规则不存在", "rebate_rule_not_found")
    return rule


def describe_rule(rule):
    """One line in Chinese: period, basis, tiers, growth."""
    tiers = "；".join(f"满 {format_yuan(t.threshold_fen)} 返 {percent_text(t.rate_bp)}%"
                     for t in sorted(rule.tiers, key=lambda t: t.threshold_fen))
    text_ = f"{PERIOD_LABELS[rule.period_kind]}·按{BASIS_LABELS[rule.basis]}：{tiers}（达到的最高一档比例适用于全部金额）"
    if rule.growth_rate_bp is not None:
        text_ += (f"；同比增长 ≥ {percent_text(rule.growth_threshold_bp or 0)}% 另返 {percent_text(rule.growth_rate_bp)}%"
                  f"（去年同期不少于 {format_yuan(rule.growth_min_last_year_fen or 0)}）")
    return text_
