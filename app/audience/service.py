"""Audiences: which dealers an item (a policy, a material, a campaign) is addressed to.

One service decides it for every kind of item, so "who sees it in the mini-program", "who is
messaged" and "who counts as addressed in the console" can never disagree.

An audience is either every dealer, or:
- named dealers (by code) — always in; plus
- a filter by tier and/or region: a dealer is in when its tier is one of the tiers (if any
  are given) AND its region is under one of the regions (if any are given; a province covers
  its cities). So 「金牌 + 广东省」 means gold dealers in Guangdong, not every gold dealer
  plus every dealer in Guangdong.
An audience with nothing chosen is refused (it would silently reach nobody).

Audiences are evaluated against a dealer's tier and region *now*: a dealer moved to another
tier after an item was published sees exactly what its new tier is addressed, not what the
old one was. Items keep their targets in `audience_targets` rows (owner_type, owner_id).
"""
from dataclasses import dataclass

from sqlalchemy import and_, delete, exists, false, func, insert, or_, select, true

from app.audience.models import AudienceTarget
from app.extensions import db
from app.kernel import inputs

TARGETS = AudienceTarget.__table__
OWNER_TYPES = ("policy", "material", "campaign")
MAX_TARGETS = 500


@dataclass(frozen=True)
class Audience:
    all_dealers: bool = False
    tiers: tuple = ()
    regions: tuple = ()
    dealers: tuple = ()

    @property
    def empty(self):
        return not (self.all_dealers or self.tiers or self.regions or self.dealers)

    def to_dict(self):
        return {"all": self.all_dealers, "tiers": list(self.tiers), "regions": list(self.regions),
                "dealers": list(self.dealers)}


EVERYONE = Audience(all_dealers=True)


def region_targets(region_code):
    """The region codes whose audience covers a dealer in `region_code`: itself, its city, its province."""
    return sorted({region_code, region_code[:4] + "00", region_code[:2] + "0000"})


# --- reading what staff chose ---------------------------------------------------------

def _codes(values, *, field, label):
    if values is None:
        return []
    if isinstance(values, str):
        values = values.replace("，", ",").replace("、", ",").replace(",", " ").split()
    if not isinstance(values, (list, tuple)):
        raise inputs.invalid(field, f"{label}应为列表")
    if len(values) > MAX_TARGETS:
        raise inputs.invalid(field, f"{label}最多 {MAX_TARGETS} 个")
    return [inputs.text(v, field=field, label=label, max_len=32) for v in values]


def _known(session, column, codes, *, field, label):
    """The stored spelling of each code (case-insensitive); 422 naming every unknown one."""
    if not codes:
        return ()
    found = {
        stored.upper(): stored
        for stored in session.execute(select(column).where(func.upper(column).in_([c.upper() for c in codes]))).scalars()
    }
    unknown = [c for c in codes if c.upper() not in found]
    if unknown:
        raise inputs.invalid(field, f"{label}不存在：{'、'.join(unknown)}")
    return tuple(dict.fromkeys(found[c.upper()] for c in codes))


def parse(data, *, session=None, field="audience"):
    """An `Audience` from `{"all": bool, "tiers": [...], "regions": [...], "dealers": [...]}`
    (lists of codes, or one string of codes separated by spaces or commas). Unknown codes and
    an empty audience answer 422 with a Chinese message; codes are stored as the database spells them."""
    from app.dealers.models import Dealer, Region, Tier

    session = session or db.session
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise inputs.invalid(field, "受众格式不正确")
    everyone = data.get("all")
    if isinstance(everyone, str):
        everyone = everyone.strip().lower() in ("1", "true", "on", "yes")
    if everyone:
        return EVERYONE
    audience = Audience(
        tiers=_known(session, Tier.code, _codes(data.get("tiers"), field=f"{field}.tiers", label="等级"),
                     field=f"{field}.tiers", label="等级"),
        regions=_known(session, Region.code, _codes(data.get("regions"), field=f"{field}.regions", label="地区"),
                       field=f"{field}.regions", label="地区"),
        dealers=_known(session, Dealer.code, _codes(data.get("dealers"), field=f"{field}.dealers", label="经销商"),
                       field=f"{field}.dealers", label="经销商"),
    )
    if audience.empty:
        raise inputs.invalid(field, "请选择受众：全部经销商，或按等级、地区、指定经销商选择")
    return audience


def parse_form(form, *, session=None, prefix="audience"):
    """`parse` from a console form made with templates/console/_audience.html: a checkbox
    `<prefix>_all`, multi-selects `<prefix>_tiers` and `<prefix>_regions`, and a text field
    `<prefix>_dealers` of dealer codes."""
    return parse({
        "all": form.get(f"{prefix}_all"),
        "tiers": form.getlist(f"{prefix}_tiers"),
        "regions": form.getlist(f"{prefix}_regions"),
        "dealers": form.get(f"{prefix}_dealers", ""),
    }, session=session, field=prefix)


# --- storing -------------------------------------------------------------------------

def _check_owner(owner_type):
    if owner_type not in OWNER_TYPES:
        raise ValueError(f"unknown audience owner {owner_type!r}")


def save(session, owner_type, owner_id, audience):
    """Replace the item's targets with `audience`, inside the caller's transaction."""
    _check_owner(owner_type)
    if audience.empty:
        raise ValueError("an empty audience reaches nobody")
    conn = session.connection()
    conn.execute(delete(TARGETS).where(TARGETS.c.owner_type == owner_type, TARGETS.c.owner_id == owner_id))
    rows = [("all", "")] if audience.all_dealers else (
        [("tier", t) for t in audience.tiers] + [("region", r) for r in audience.regions]
        + [("dealer", d) for d in audience.dealers]
    )
    conn.execute(insert(TARGETS), [
        {"owner_type": owner_type, "owner_id": owner_id, "scope": scope, "target": target} for scope, target in rows
    ])


def _from_rows(rows):
    if any(scope == "all" for scope, _ in rows):
        return EVERYONE
    of = {"tier": [], "region": [], "dealer": []}
    for scope, target in rows:
        of[scope].append(target)
    return Audience(tiers=tuple(sorted(of["tier"])), regions=tuple(sorted(of["region"])),
                    dealers=tuple(sorted(of["dealer"])))


def load(owner_type, owner_id, *, session=None):
    return load_many(owner_type, [owner_id], session=session).get(owner_id, Audience())


def load_many(owner_type, owner_ids, *, session=None):
    """{owner_id: Audience} for the items (an item without targets is missing)."""
    _check_owner(owner_type)
    ids = list(owner_ids)
    if not ids:
        return {}
    rows = (session or db.session).execute(
        select(TARGETS.c.owner_id, TARGETS.c.scope, TARGETS.c.target)
        .where(TARGETS.c.owner_type == owner_type, TARGETS.c.owner_id.in_(ids))
    ).all()
    grouped = {}
    for owner_id, scope, target in rows:
        grouped.setdefault(owner_id, []).append((scope, target))
    return {owner_id: _from_rows(pairs) for owner_id, pairs in grouped.items()}


# --- who is in it --------------------------------------------------------------------

def matches(audience, *, dealer_code, tier_code, region_code):
    """Whether a dealer with these facts (as they are now) is in `audience`."""
    if audience.all_dealers or dealer_code in audience.dealers:
        return True
    if not (audience.tiers or audience.regions):
        return False
    tier_ok = not audience.tiers or tier_code in audience.tiers
    region_ok = not audience.regions or bool(set(region_targets(region_code)) & set(audience.regions))
    return tier_ok and region_ok


def matches_dealer(audience, dealer):
    return matches(audience, dealer_code=dealer.code, tier_code=dealer.tier.code, region_code=dealer.region_code)


def visible_condition(owner_type, owner_id_column, *, dealer_code, tier_code, region_code):
    """SQL condition on an item table: the item (its id in `owner_id_column`) is addressed to
    the dealer with these facts. The same rule as `matches`, for listing a dealer's items in one query."""
    _check_owner(owner_type)

    def has(scope, values=None):
        condition = exists().where(
            TARGETS.c.owner_type == owner_type, TARGETS.c.owner_id == owner_id_column, TARGETS.c.scope == scope
        )
        return condition.where(TARGETS.c.target.in_(values)) if values is not None else condition

    filtered = and_(
        or_(has("tier"), has("region")),
        or_(~has("tier"), has("tier", [tier_code])),
        or_(~has("region"), has("region", region_targets(region_code))),
    )
    return or_(has("all"), has("dealer", [dealer_code]), filtered)


def dealer_condition(audience):
    """SQL condition on `Dealer` (joined to `Tier`): the dealer is in `audience` now."""
    from app.dealers.models import Dealer, Tier

    if audience.all_dealers:
        return true()
    parts = []
    if audience.dealers:
        parts.append(Dealer.code.in_(audience.dealers))
    if audience.tiers or audience.regions:
        filters = []
        if audience.tiers:
            filters.append(Tier.code.in_(audience.tiers))
        if audience.regions:
            filters.append(or_(*(_region_covers(code, Dealer.region_code) for code in audience.regions)))
        parts.append(and_(*filters))
    return or_(*parts) if parts else false()


def _region_covers(code, column):
    if code.endswith("0000"):
        return column.like(code[:2] + "%")
    if code.endswith("00"):
        return column.like(code[:4] + "%")
    return column == code


def dealer_ids(audience, *, session=None, statuses=("active", "suspended")):
    """Ids of the dealers in `audience` now (by default every dealer that can still log in)."""
    from app.dealers.models import Dealer, Tier

    query = (
        select(Dealer.id).join(Tier, Tier.id == Dealer.tier_id)
        .where(dealer_condition(audience), Dealer.status.in_(statuses)).order_by(Dealer.id)
    )
    return list((session or db.session).execute(query).scalars())


# --- showing it ------------------------------------------------------------------------

def describe(audience, *, session=None):
    """The audience in words, e.g. 「等级：金牌、银牌；地区：广东省」 or 「全部经销商」."""
    from app.dealers.addresses import region_texts
    from app.dealers.models import Dealer, Tier

    if audience.all_dealers:
        return "全部经销商"
    session = session or db.session

    def names(column_code, column_name, codes):
        found = dict(session.execute(select(column_code, column_name).where(column_code.in_(codes))).all())
        return "、".join(found.get(code, code) for code in codes)

    parts = []
    filters = []
    if audience.tiers:
        filters.append(f"等级：{names(Tier.code, Tier.name, audience.tiers)}")
    if audience.regions:
        written = region_texts(audience.regions, session=session)  # "上海市", not GB/T's "市辖区"
        filters.append("地区：" + "、".join(written.get(code, code) for code in audience.regions))
    if filters:
        parts.append("（且）".join(filters) if len(filters) > 1 else filters[0])
    if audience.dealers:
        found = dict(session.execute(select(Dealer.code, Dealer.name).where(Dealer.code.in_(audience.dealers))).all())
        parts.append("指定经销商：" + "、".join(f"{c} {found.get(c, '')}".strip() for c in audience.dealers))
    return "；".join(parts) or "（未选择受众）"


def form_choices(*, session=None):
    """Tiers and regions (provinces with their cities) for the audience picker."""
    from app.dealers.models import Region, Tier

    session = session or db.session
    regions = session.execute(select(Region).order_by(Region.code)).scalars().all()
    children = {}
    for region in regions:
        if region.parent_code is not None:
            children.setdefault(region.parent_code, []).append(region)
    return {
        "tiers": session.execute(select(Tier).order_by(Tier.rank)).scalars().all(),
        "regions": [(p, children.get(p.code, [])) for p in regions if p.parent_code is None],
    }
