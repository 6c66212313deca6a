"""Dealer tiers (经销商等级: 金牌/银牌/普通 …): the list with how many dealers each holds, and
the brand's writes — create, edit (name and sort order), delete an unused one.

A tier's code is fixed once created: visibility rules and audiences name tiers by code, so
changing it would silently cut them loose. `rank` orders tiers on every page and picker
(lower first). Writes need `tiers.manage`, are audited (entity `tier`) and check their
input with Chinese messages.
"""
import re

from sqlalchemy import func, select

from app.audience.models import AudienceTarget
from app.audit import service as audit
from app.catalog.models import VisibilityRule
from app.database import write_transaction
from app.dealers.models import Dealer, Tier
from app.extensions import db
from app.kernel import inputs
from app.kernel.errors import DomainError
from app.kernel.permissions import require
from app.pricing.models import PriceList
from app.rebates.models import RebateTarget

CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
RANK_MAX = 9999


def list_tiers():
    """Every tier in sort order, each {"tier", "dealers"} (how many dealers hold it)."""
    counts = dict(db.session.execute(select(Dealer.tier_id, func.count()).group_by(Dealer.tier_id)).all())
    tiers = db.session.execute(select(Tier).order_by(Tier.rank, Tier.id)).scalars().all()
    return [{"tier": t, "dealers": counts.get(t.id, 0)} for t in tiers]


def _code(value):
    code = inputs.text(value, field="code", label="等级编码", max_len=32)
    if not CODE_PATTERN.fullmatch(code):
        raise inputs.invalid("code", "等级编码只能包含字母、数字、_ 和 -，不超过 32 个字符")
    return code


def _fields(name, rank):
    return (inputs.text(name, field="name", label="等级名称", max_len=32),
            inputs.integer(rank, field="rank", label="排序", minimum=0, maximum=RANK_MAX))


def _name_free(session, name, tier_id=None):
    if session.execute(select(Tier.code).where(Tier.name == name, Tier.id != (tier_id or 0))).first():
        raise DomainError("tier_name_taken", f"已有名为“{name}”的等级", 409, {"field": "name"})


def create_tier(*, staff, code, name, rank):
    """A new tier. 422 for an empty or malformed code or name or a bad sort number, 409 when the
    code or the name is taken. Audited as `tier.create`."""
    require(staff, "tiers.manage")
    code = _code(code)
    name, rank = _fields(name, rank)
    with write_transaction() as session:
        if session.execute(select(Tier.id).where(Tier.code == code)).first():
            raise DomainError("tier_code_taken", f"等级编码 {code} 已存在", 409, {"field": "code"})
        _name_free(session, name)
        tier = Tier(code=code, name=name, rank=rank)
        session.add(tier)
        session.flush()
        audit.record(session, actor=staff, action="tier.create", entity_type="tier", entity_id=tier.code,
                     label=f"{tier.code} {tier.name}", after={"code": code, "name": name, "rank": rank})
    return tier


def _lock(session, tier_id):
    tier = session.execute(select(Tier).where(Tier.id == tier_id).with_for_update()).scalar_one_or_none()
    if tier is None:
        raise DomainError("tier_not_found", "经销商等级不存在", 404)
    return tier


def update_tier(*, staff, tier_id, name, rank):
    """Rename a tier and/or change its sort number (the code stays). Audited as `tier.update`
    with only what changed."""
    require(staff, "tiers.manage")
    name, rank = _fields(name, rank)
    with write_transaction() as session:
        tier = _lock(session, tier_id)
        _name_free(session, name, tier.id)
        before, after = audit.changed({"name": tier.name, "rank": tier.rank}, {"name": name, "rank": rank})
        if after:
            tier.name, tier.rank = name, rank
            audit.record(session, actor=staff, action="tier.update", entity_type="tier", entity_id=tier.code,
                         label=f"{tier.code} {tier.name}", before=before, after=after)
    return tier


def _uses(session, tier):
    """What still names `tier`, as Chinese phrases ("3 家经销商", "1 个价格表" …)."""
    counts = (
        (session.execute(select(func.count()).where(Dealer.tier_id == tier.id)).scalar_one(), "家经销商"),
        (session.execute(select(func.count()).where(PriceList.tier_id == tier.id)).scalar_one(), "个价格表"),
        (session.execute(select(func.count()).where(VisibilityRule.scope == "tier", VisibilityRule.target == tier.code))
         .scalar_one(), "条商品可见性规则"),
        (session.execute(select(func.count()).where(AudienceTarget.scope == "tier", AudienceTarget.target == tier.code))
         .scalar_one(), "个政策/素材/群发的受众"),
        (session.execute(select(func.count()).where(RebateTarget.kind == "tier", RebateTarget.target_id == tier.id))
         .scalar_one(), "条返利规则"),
    )
    return [f"{n} {what}" for n, what in counts if n]


def delete_tier(*, staff, tier_id):
    """Delete a tier nothing uses. 409 naming what still uses it (dealers first: "仍有 3 家经销商
    属于该等级"). Audited as `tier.delete`."""
    require(staff, "tiers.manage")
    with write_transaction() as session:
        tier = _lock(session, tier_id)
        uses = _uses(session, tier)
        if uses:
            raise DomainError("tier_in_use", f"“{tier.name}”仍被 {'、'.join(uses)} 使用，不能删除；"
                              "请先把这些经销商改到其他等级、或修改相关规则", 409, {"uses": uses})
        audit.record(session, actor=staff, action="tier.delete", entity_type="tier", entity_id=tier.code,
                     label=f"{tier.code} {tier.name}", before={"code": tier.code, "name": tier.name, "rank": tier.rank})
        session.delete(tier)
    return tier
