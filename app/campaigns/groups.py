"""Customer groups: synced from WeCom, mapped to dealers (by hand, with a suggestion from the
names), listed for the console."""
from datetime import datetime, timezone

from sqlalchemy import func, or_, select

from app.audit import service as audit
from app.campaigns import wecom
from app.campaigns.models import CustomerGroup
from app.database import write_transaction
from app.dealers.models import Dealer
from app.extensions import db
from app.kernel import inputs
from app.kernel.clock import utcnow
from app.kernel.errors import NotFound
from app.staff.models import Staff

GROUP_PAGE_SIZE = 50


class _System:
    id = None
    name = "系统"


SYSTEM = _System()


def owner_userids(session):
    """The WeCom userids whose groups are synced: every active rep (role sales) with one."""
    return list(session.execute(
        select(Staff.wecom_userid).where(Staff.active.is_(True), Staff.role == "sales", Staff.wecom_userid.is_not(None))
        .order_by(Staff.wecom_userid)
    ).scalars())


def sync_groups(*, actor=SYSTEM, owners=None):
    """Fetch the groups owned by `owners` (default: every rep's userid) from groupchat/list and
    each group's details from groupchat/get, and store them. A group stored before, owned by
    one of these owners, that WeCom no longer lists is marked dismissed. Audited as one entry.

    Returns counts. Raises WeChatError when WeCom cannot be asked (nothing is changed then).
    """
    owners = owners if owners is not None else owner_userids(db.session)
    db.session.rollback()  # no transaction held open while WeCom answers
    if not owners:
        return {"owners": 0, "groups": 0, "new": 0, "dismissed": 0}
    gateway = wecom.gateway()
    listed = gateway.list_group_chats(owners)
    details = {}
    for item in listed:
        chat = gateway.get_group_chat(item["chat_id"])
        members = chat.get("member_list") or []
        details[item["chat_id"]] = {
            "name": (chat.get("name") or "")[:128],
            "owner_userid": chat.get("owner") or "",
            "owner_status": int(item.get("status") or 0),
            "member_count": len(members),
            "external_count": sum(1 for m in members if m.get("type") == 2),
            "wecom_created_at": datetime.fromtimestamp(int(chat["create_time"]), timezone.utc)
            if chat.get("create_time") else None,
        }
    now = utcnow()
    with write_transaction() as session:
        existing = {g.chat_id: g for g in session.execute(
            select(CustomerGroup).where(or_(CustomerGroup.chat_id.in_(list(details)),
                                            CustomerGroup.owner_userid.in_(owners)))
        ).scalars()}
        new = dismissed = 0
        for chat_id, values in details.items():
            group = existing.get(chat_id)
            if group is None:
                group = CustomerGroup(chat_id=chat_id, created_at=now)
                session.add(group)
                new += 1
            for key, value in values.items():
                setattr(group, key, value)
            group.status, group.dismissed_at, group.synced_at, group.updated_at = "active", None, now, now
        for chat_id, group in existing.items():
            if chat_id not in details and group.status == "active":
                group.status, group.dismissed_at, group.updated_at = "dismissed", now, now
                dismissed += 1
        result = {"owners": len(owners), "groups": len(details), "new": new, "dismissed": dismissed}
        audit.record(session, actor=actor, action="groups.sync", entity_type="customer_group", entity_id="sync",
                     label=f"同步 {len(owners)} 位群主的客户群", after=result)
    return result


def suggest_dealer(group_name, dealers):
    """The dealer whose name, or its trade name (「广州市天河区鑫达商贸有限公司」 -> 「鑫达」), appears
    in the group's name; the longest match wins; None when none does."""
    best = None
    for dealer in dealers:
        for candidate in name_candidates(dealer.name):
            if candidate in (group_name or "") and (best is None or len(candidate) > best[0]):
                best = (len(candidate), dealer)
    return best[1] if best else None


COMPANY_SUFFIXES = ("有限责任公司", "股份有限公司", "有限公司", "公司")
TRADE_WORDS = ("商贸", "贸易", "副食品", "食品", "粮油", "酒店用品", "商行", "批发")


def name_candidates(name):
    """Ways a dealer's name may appear in a group name: the full name, without the company
    suffix, without the place in front, and without the line of trade."""
    core = name
    for suffix in COMPANY_SUFFIXES:
        if core.endswith(suffix):
            core = core[: -len(suffix)]
            break
    found = {name, core}
    cut = max(core.rfind(mark) for mark in "省市区县")
    # The place in front: up to the last 省/市/区/县, or (「上海沪联」) a two-character city name.
    cores = [core[cut + 1:]] if 0 <= cut < len(core) - 2 else [core, core[2:]] if len(core) >= 4 else [core]
    for core in cores:
        found.add(core)
        changed = True
        while changed:
            changed = False
            for word in TRADE_WORDS:
                if core.endswith(word) and len(core) - len(word) >= 2:
                    core = core[: -len(word)]
                    found.add(core)
                    changed = True
    return {c for c in found if len(c) >= 2}


def list_groups(*, q=None, owner=None, mapped=None, status="active", dealer_id=None, page=1,
                page_size=GROUP_PAGE_SIZE):
    query = select(CustomerGroup)
    if status:
        query = query.where(CustomerGroup.status == status)
    if owner:
        query = query.where(CustomerGroup.owner_userid == owner)
    if mapped == "yes":
        query = query.where(CustomerGroup.dealer_id.is_not(None))
    elif mapped == "no":
        query = query.where(CustomerGroup.dealer_id.is_(None))
    if dealer_id:
        query = query.where(CustomerGroup.dealer_id == dealer_id)
    if q:
        query = query.where(CustomerGroup.name.contains(q, autoescape=True))
    total = db.session.execute(query.with_only_columns(func.count()).order_by(None)).scalar_one()
    rows = db.session.execute(
        query.order_by(CustomerGroup.owner_userid, CustomerGroup.name, CustomerGroup.id)
        .limit(page_size).offset((page - 1) * page_size)
    ).scalars().all()
    return rows, total


def map_group(*, staff, group_id, dealer_code):
    """Map a group to a dealer (by code; empty unmaps). Audited. 404 for an unknown group,
    422 for an unknown dealer code."""
    code = inputs.text(dealer_code, field="dealer", label="经销商编码", max_len=32, required=False)
    with write_transaction() as session:
        group = session.get(CustomerGroup, group_id)
        if group is None:
            raise NotFound("客户群不存在", "group_not_found")
        dealer = None
        if code:
            dealer = session.execute(select(Dealer).where(func.upper(Dealer.code) == code.upper())).scalar_one_or_none()
            if dealer is None:
                raise inputs.invalid("dealer", f"经销商编码 {code} 不存在")
        before = group.dealer.code if group.dealer else None
        after = dealer.code if dealer else None
        if before == after:
            return group
        group.dealer_id = dealer.id if dealer else None
        group.updated_at = utcnow()
        audit.record(session, actor=staff, action="groups.map", entity_type="customer_group", entity_id=group.id,
                     label=group.name, before={"dealer": before}, after={"dealer": after})
    return group


def owner_names(session, userids):
    rows = session.execute(select(Staff.wecom_userid, Staff.name).where(Staff.wecom_userid.in_(list(userids)))).all()
    return dict(rows)


def dealer_choices():
    """The active dealers, by code: what a group may be mapped to."""
    return db.session.execute(select(Dealer).where(Dealer.status == "active").order_by(Dealer.code)).scalars().all()
