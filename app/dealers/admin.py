"""Staff managing dealers: the list, one dealer, create, edit, credit limit, suspend and reactivate.

`create_dealer`, `update_dealer`, `set_credit_limit`, `suspend_dealer`, `reactivate_dealer`
serve the console's dealer pages and the Excel importer alike: keyword arguments, the acting
staff member explicit, every rule checked inside (a bad value raises 422 `validation_error`
whose message names the field in Chinese and whose details are {"fields": {field: [msg]}}),
and every change audited in the transaction that makes it. Each owns its transaction; pass
`session=` (an open `write_transaction()`) to make it part of a larger one — an import writes
all its rows in one, so a bad row leaves nothing behind. Validation happens before any write.
The fields, their labels and their checks are `app.dealers.fields`.
"""
import contextlib

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from app.audit import service as audit
from app.database import write_transaction
from app.dealers.access import scope_to_staff
from app.dealers.addresses import region_texts
from app.dealers.fields import (
    DEALER_FIELDS,
    FIELD_LABELS,
    check_amount,
    checked_values,
    clean_reason,
    dealer_validation_error,
    editable_fields,
)
from app.dealers.models import DEALER_STATUSES, Dealer, Region, Tier
from app.extensions import db
from app.funds import service as funds
from app.kernel.errors import DomainError, NotFound
from app.kernel.permissions import can, require, sees_only_own_dealers


@contextlib.contextmanager
def _transaction(session):
    if session is not None:
        yield session
    else:
        with write_transaction() as own:
            yield own



# --- the dealer list and one dealer -------------------------------------------------------

DEALER_LIST_PAGE_SIZE = 50


def list_dealers_for_staff(*, staff, q=None, tier=None, region=None, rep_id=None, status=None, page=1):
    """One page of dealers with tier, region, rep and credit, filtered: (rows, total), each row
    (dealer, tier name, region as written (`region_texts`), rep name, credit limit, exposure, available) in fen.

    Reps see only their own dealers; admins and finance see all. `q` matches code or name,
    `region` a province or city code (a province includes its cities and their districts).
    """
    from app.funds.models import CreditAccount, exposure_fen
    from app.staff.models import Staff

    require(staff, "dealers.view", "你没有查看经销商的权限")
    if status is not None and status not in DEALER_STATUSES:
        raise DomainError("invalid_filter", "状态只能是“正常”或“暂停”", 400)
    where = []
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(or_(Dealer.code.ilike(like, escape="\\"), Dealer.name.ilike(like, escape="\\")))
    if tier:
        where.append(Tier.code == tier)
    if region:
        # the region itself, its children and their children (a province's districts too), as
        # the regions page counts them
        children = select(Region.code).where(Region.parent_code == region)
        where.append(or_(Dealer.region_code == region, Region.parent_code == region,
                         Region.parent_code.in_(children)))
    if rep_id is not None:
        where.append(Dealer.rep_id == rep_id)
    if status:
        where.append(Dealer.status == status)
    base = scope_to_staff(
        select(Dealer, Tier.name.label("tier_name"), Staff.name.label("rep_name"),
               CreditAccount.credit_limit_fen, CreditAccount.receivable_fen, CreditAccount.held_fen)
        .join(Tier, Tier.id == Dealer.tier_id).join(Region, Region.code == Dealer.region_code)
        .outerjoin(Staff, Staff.id == Dealer.rep_id).outerjoin(CreditAccount, CreditAccount.dealer_id == Dealer.id)
        .where(*where),
        staff,
    )
    total = db.session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    found = db.session.execute(
        base.order_by(Dealer.code).limit(DEALER_LIST_PAGE_SIZE).offset((page - 1) * DEALER_LIST_PAGE_SIZE)
    ).all()
    regions = region_texts(dealer.region_code for dealer, *_ in found)  # "上海市", not "市辖区"
    rows = []
    for dealer, tier_name, rep_name, limit_fen, receivable_fen, held_fen in found:
        limit_fen, used_fen = limit_fen or 0, exposure_fen(receivable_fen or 0, held_fen or 0)
        rows.append((dealer, tier_name, regions[dealer.region_code], rep_name, limit_fen, used_fen,
                     max(limit_fen - used_fen, 0)))
    return rows, total



def get_dealer_for_staff(*, staff, code):
    """The dealer if `staff` may see it (admins and finance every dealer, a rep their own); 404 else."""
    require(staff, "dealers.view", "你没有查看经销商的权限")
    query = scope_to_staff(select(Dealer).where(Dealer.code == code), staff)
    dealer = db.session.execute(query).scalar_one_or_none()
    if dealer is None:
        raise NotFound("经销商不存在，或不是你负责的经销商", "dealer_not_found")
    return dealer



def permissions_for(staff, dealer=None):
    """What `staff` may do on a dealer's page (the services check the same rules again)."""
    own = dealer is None or not sees_only_own_dealers(staff) or dealer.rep_id == staff.id
    return {
        "edit_fields": editable_fields(staff) if own else (),
        "credit": can(staff, "dealers.credit"),
        "status": can(staff, "dealers.status"),
        "invite": can(staff, "dealers.invite") and own,
        "create": can(staff, "dealers.create"),
    }


# --- the changes ----------------------------------------------------------------------------

def snapshot(session, dealer):
    """A dealer's editable fields as the audit log keeps them (codes, usernames, ISO dates, fen)."""
    from app.staff.models import Staff

    tier = session.get(Tier, dealer.tier_id)
    rep = session.get(Staff, dealer.rep_id) if dealer.rep_id else None
    return {
        "code": dealer.code, "name": dealer.name, "tier": tier.code if tier else None,
        "region_code": dealer.region_code, "rep": rep.username if rep else None,
        "contact_name": dealer.contact_name, "contact_phone": dealer.contact_phone,
        "payment_terms_days": dealer.payment_terms_days, "contract_start": dealer.contract_start,
        "contract_end": dealer.contract_end, "annual_target_fen": dealer.annual_target_fen,
    }



def _lock_dealer_for_staff(session, staff, code):
    """The dealer, row-locked, if `staff` may see it; 404 otherwise (a rep's view of another
    rep's dealer is the same as a missing one). FOR NO KEY UPDATE: orders being inserted for
    the dealer (their foreign key takes KEY SHARE) are not blocked, so no deadlock with a
    submit that holds the credit account."""
    query = scope_to_staff(select(Dealer).where(Dealer.code == code), staff)
    query = query.with_for_update(of=Dealer, key_share=True)
    dealer = session.execute(query).scalar_one_or_none() if isinstance(code, str) else None
    if dealer is None:
        raise NotFound("经销商不存在，或不是你负责的经销商", "dealer_not_found")
    return dealer


def _apply_credit_limit(session, staff, dealer, limit_fen, reason):
    previous = funds.set_limit(session, dealer_id=dealer.id, limit_fen=limit_fen, note=reason)
    if previous != limit_fen:
        audit.record(
            session, actor=staff, action="credit.limit", entity_type="credit", entity_id=dealer.code,
            label=dealer.name, before={"credit_limit_fen": previous}, after={"credit_limit_fen": limit_fen},
            reason=reason,
        )
    return previous



def create_dealer(*, staff, code, name, tier, region_code, rep=None, contact_name=None, contact_phone=None,
                  payment_terms_days=0, contract_start=None, contract_end=None, annual_target_fen=None,
                  credit_limit_fen=None, reason=None, session=None):
    """A new active dealer with its credit account (admins only; 403 otherwise).

    `tier` is a tier code or name, `rep` a sales rep's username (or their name when unique),
    `region_code` a GB/T 2260 code from the regions table; amounts are integer fen. Audited as
    `dealer.create`, plus `credit.limit` (with a `limit_set` credit entry) when a limit is given.
    Raises 422 `validation_error` naming every bad field (a taken code or name included).
    """
    require(staff, "dealers.create", "只有管理员可以新建经销商")
    fields = {
        "code": code, "name": name, "tier": tier, "region_code": region_code, "rep": rep,
        "contact_name": contact_name, "contact_phone": contact_phone, "payment_terms_days": payment_terms_days,
        "contract_start": contract_start, "contract_end": contract_end, "annual_target_fen": annual_target_fen,
        "credit_limit_fen": credit_limit_fen,
    }
    reason = clean_reason(reason)
    with _transaction(session) as tx:
        values = checked_values(tx, fields)
        limit_fen = values.pop("credit_limit_fen", None)
        dealer = Dealer(status="active", **values)
        tx.add(dealer)
        try:
            tx.flush()
        except IntegrityError:
            # Another clerk created the same code a moment ago.
            raise dealer_validation_error({"code": [f"{values['code']} 已被使用"]}) from None
        funds.lock_account(tx, dealer.id)
        audit.record(
            tx, actor=staff, action="dealer.create", entity_type="dealer", entity_id=dealer.code,
            label=dealer.name, after={**snapshot(tx, dealer), "status": "active"}, reason=reason,
        )
        if limit_fen:
            _apply_credit_limit(tx, staff, dealer, limit_fen, reason or "新建经销商")
    return dealer


def update_dealer(*, staff, code, reason=None, session=None, **changes):
    """Change some of a dealer's fields (any of DEALER_FIELDS but `code`; only the keys given).

    Admins change everything; finance the payment terms and credit limit; a sales rep the
    contact name and phone of their own dealers — changing any other field answers 403, and
    another rep's dealer 404. A credit limit goes through `set_credit_limit`'s rules. Audited as
    `dealer.update` with the before/after of the changed fields only; nothing changed, nothing
    written. Returns the dealer.
    """
    unknown = set(changes) - set(DEALER_FIELDS[1:])
    if unknown:
        raise TypeError(f"update_dealer() got unknown fields {sorted(unknown)}")
    require(staff, "dealers.edit", "你没有修改经销商的权限")
    reason = clean_reason(reason)
    with _transaction(session) as tx:
        dealer = _lock_dealer_for_staff(tx, staff, code)
        values = checked_values(tx, changes, dealer)
        limit_fen = values.pop("credit_limit_fen", None)
        before = snapshot(tx, dealer)
        current_limit = funds.lock_account(tx, dealer.id).credit_limit_fen if limit_fen is not None else None
        changed_fields = [f for f, v in values.items() if getattr(dealer, f) != v]
        changed_names = {_FIELD_OF_COLUMN.get(f, f) for f in changed_fields}
        if limit_fen is not None and limit_fen != current_limit:
            changed_names.add("credit_limit_fen")
        allowed = editable_fields(staff)
        refused = sorted(changed_names - set(allowed), key=DEALER_FIELDS.index)
        if refused:
            may = "、".join(FIELD_LABELS[f] for f in allowed) or "（无）"
            raise DomainError(
                "forbidden", f"你的角色不能修改{'、'.join(FIELD_LABELS[f] for f in refused)}；可以修改：{may}", 403,
                {"fields": refused},
            )
        for field in changed_fields:
            setattr(dealer, field, values[field])
        tx.flush()
        old, new = audit.changed(before, snapshot(tx, dealer))
        if new:
            audit.record(
                tx, actor=staff, action="dealer.update", entity_type="dealer", entity_id=dealer.code,
                label=dealer.name, before=old, after=new, reason=reason,
            )
        if "credit_limit_fen" in changed_names:
            _apply_credit_limit(tx, staff, dealer, limit_fen, reason)
    return dealer


_FIELD_OF_COLUMN = {"tier_id": "tier", "rep_id": "rep"}


def set_credit_limit(*, staff, code, limit_fen, reason=None, session=None):
    """Give a dealer a new credit limit (admins and finance; 403 otherwise): writes a
    `limit_set` credit entry and the audit entry `credit.limit`. Returns the previous limit.
    A limit below the dealer's current use is allowed (new credit orders wait for headroom)."""
    require(staff, "dealers.credit", "只有管理员和财务可以调整信用额度")
    reason = clean_reason(reason)
    errors = {}
    limit_fen = check_amount("credit_limit_fen", limit_fen, errors)
    if limit_fen is None and not errors:
        errors["credit_limit_fen"] = ["不能为空（没有额度请填 0）"]
    if errors:
        raise dealer_validation_error(errors)
    with _transaction(session) as tx:
        dealer = _lock_dealer_for_staff(tx, staff, code)
        return _apply_credit_limit(tx, staff, dealer, limit_fen, reason)


def suspend_dealer(*, staff, code, reason, session=None):
    """Stop a dealer ordering (admins and finance): its users still sign in and see their orders,
    but every new order answers 403 `dealer_suspended`. Needs a reason; audited as
    `dealer.suspend`. 409 if already suspended."""
    return _set_status(staff, code, reason, session, to="suspended")


def reactivate_dealer(*, staff, code, reason, session=None):
    """Let a suspended dealer order again (admins and finance); audited as `dealer.reactivate`."""
    return _set_status(staff, code, reason, session, to="active")


def _set_status(staff, code, reason, session, *, to):
    action = "dealer.suspend" if to == "suspended" else "dealer.reactivate"
    verb = "暂停" if to == "suspended" else "恢复"
    require(staff, "dealers.status", f"只有管理员和财务可以{verb}经销商")
    reason = clean_reason(reason, required=True)
    with _transaction(session) as tx:
        dealer = _lock_dealer_for_staff(tx, staff, code)
        if dealer.status == to:
            state = "暂停" if to == "suspended" else "正常"
            raise DomainError("dealer_status_unchanged", f"经销商 {dealer.code} 已是“{state}”状态", 409)
        previous, dealer.status = dealer.status, to
        tx.flush()
        audit.record(
            tx, actor=staff, action=action, entity_type="dealer", entity_id=dealer.code, label=dealer.name,
            before={"status": previous}, after={"status": to}, reason=reason,
        )
    return dealer

