"""The regions (地区) the system knows: administrative divisions by GB/T 2260 code in the
`regions` table, which dealers, their addresses, warehouses, visibility rules and audiences
point at.

The product ships no national division table: a brand's database holds the divisions it
uses (the demo seeds a few provinces and cities). Brand staff with `regions.manage` add a
missing division and correct a name; a code is never changed or removed once added (every
row naming it would silently move). A code's place in the tree follows from GB/T 2260
itself — 440000 a province, 440300 a city of it, 440305 a district of that city — so the
parent must exist before its children. Names print through `addresses.region_text`
("上海市", not GB/T's "市辖区").
"""
import re

from sqlalchemy import func, select

from app.audit import service as audit
from app.database import write_transaction
from app.dealers.models import Dealer, Region
from app.extensions import db
from app.kernel import inputs
from app.kernel.errors import DomainError
from app.kernel.permissions import require

LEVEL_LABELS = {1: "省级", 2: "地级", 3: "县级"}
_CODE = re.compile(r"[1-9][0-9]{5}")


def level_of(code):
    """1 province (xx0000), 2 city (xxxx00), 3 district — by the code, as GB/T 2260 lays it out."""
    return 1 if code.endswith("0000") else 2 if code.endswith("00") else 3


def parent_of(code):
    """The code of the division `code` belongs to (None for a province)."""
    level = level_of(code)
    return None if level == 1 else code[:2] + "0000" if level == 2 else code[:4] + "00"


def region_tree(*, q=None):
    """The divisions as a tree with the number of dealers in each (a province counts its cities'
    and districts' dealers): [{"code", "name", "level", "dealers", "own_dealers", "children"}]
    by code. With `q` (part of a name or a code) only the matching divisions, their parents and
    their children are kept. Returns (roots, number of divisions shown)."""
    rows = db.session.execute(select(Region.code, Region.name, Region.parent_code).order_by(Region.code)).all()
    own = dict(db.session.execute(select(Dealer.region_code, func.count()).group_by(Dealer.region_code)).all())
    nodes = {r.code: {"code": r.code, "name": r.name, "parent": r.parent_code, "level": level_of(r.code),
                      "own_dealers": own.get(r.code, 0), "dealers": 0, "children": []} for r in rows}
    for node in nodes.values():  # roll each dealer up its chain of parents
        seen, cursor = set(), node
        while cursor is not None and cursor["code"] not in seen:
            seen.add(cursor["code"])
            cursor["dealers"] += node["own_dealers"]
            cursor = nodes.get(cursor["parent"])
    keep = set(nodes)
    if q:
        hits = {c for c, n in nodes.items() if q in n["name"] or c.startswith(q)}
        keep = set(hits)
        for code in hits:
            cursor = nodes[code]["parent"]
            while cursor in nodes and cursor not in keep:
                keep.add(cursor)
                cursor = nodes[cursor]["parent"]
        keep |= {c for c, n in nodes.items() if n["parent"] in hits}
    roots = []
    for code in sorted(keep):
        node = nodes[code]
        parent = nodes.get(node["parent"]) if node["parent"] in keep else None
        (parent["children"] if parent else roots).append(node)
    return roots, len(keep)


def _name(value):
    return inputs.text(value, field="name", label="地区名称", max_len=64)


def create_region(*, staff, code, name):
    """Add a division. 422 for a code that is not six digits or a missing name, or when its
    province/city is not there yet; 409 for a code already present. Audited as `region.create`."""
    require(staff, "regions.manage")
    code = inputs.text(code, field="code", label="地区编码", max_len=6)
    if not _CODE.fullmatch(code):
        raise inputs.invalid("code", "地区编码应为 6 位数字（GB/T 2260，如 440305）")
    name = _name(name)
    parent = parent_of(code)
    with write_transaction() as session:
        existing = session.get(Region, code)
        if existing is not None:
            raise DomainError("region_exists", f"地区编码 {code} 已存在（{existing.name}）", 409, {"field": "code"})
        if parent is not None and session.get(Region, parent) is None:
            raise inputs.invalid("code", f"请先添加上级地区 {parent}（{LEVEL_LABELS[level_of(parent)]}）")
        region = Region(code=code, name=name, parent_code=parent)
        session.add(region)
        session.flush()
        audit.record(session, actor=staff, action="region.create", entity_type="region", entity_id=code,
                     label=f"{code} {name}", after={"code": code, "name": name, "parent_code": parent})
    return region


def rename_region(*, staff, code, name):
    """Correct a division's name (its code stays). 404 for an unknown code; an unchanged name
    writes nothing. Audited as `region.rename`."""
    require(staff, "regions.manage")
    name = _name(name)
    with write_transaction() as session:
        region = session.execute(select(Region).where(Region.code == code).with_for_update()).scalar_one_or_none()
        if region is None:
            raise DomainError("region_not_found", "地区不存在", 404)
        if region.name != name:
            audit.record(session, actor=staff, action="region.rename", entity_type="region", entity_id=code,
                         label=f"{code} {name}", before={"name": region.name}, after={"name": name})
            region.name = name
    return region
