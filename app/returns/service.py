"""Returns (after-sales): the one place that creates return requests and changes their state.

Dealer side: `create_return` (owner/buyer, own shipped orders only), `withdraw_return`
(while still pending), `list_returns`, `get_return`. Staff side: `approve_return` /
`reject_return` (admin; sales for their own dealers), `receive_return` (warehouse, admin:
some or all of the outstanding units go back on hand in the chosen warehouse, in as many
receipts as the goods arrive in), `close_return` (admin, warehouse, sales for their own
dealers: end a return whose remaining goods will not come). Each is one write transaction:
the state change, its `ReturnEvent`, the audit entry (staff), the refund and the dealer's
notification rows commit together or not at all.

Quantities: per order line, what may still be returned is the shipped quantity minus what
pending, approved and partly received requests ask for and what received or closed ones
took back (a rejected or withdrawn request frees its units). `create_return` locks the
order row, so two requests for the same order queue and the second sees the first.

Refunds follow what was received: each receipt is worth unit price × qty received per line
(never more than the order line was charged, nor the order in total), and
`app.funds.refunds.refund_receipt` refunds it in the receipt's transaction — a credit note,
prepaid, or a WeChat Pay refund sent after the commit. Receipts lock the dealer's account
row before the return row (the ledger's lock order), so two receipts of one return queue
and the second sees what the first took in.
"""
from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from app.audit import service as audit
from app.database import dialect_insert, write_transaction
from app.dealers.models import ORDERING_ROLES, Dealer
from app.dealers.access import check_may_act, scope_to_staff
from app.extensions import db
from app.funds import ledger
from app.funds import refunds as refunding
from app.inventory.models import Stock, Warehouse
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.events import publish
from app.kernel.money import format_yuan, line_amount
from app.kernel.permissions import require
from app.orders.models import STATUS_LABELS as ORDER_STATUS_LABELS
from app.orders.models import Order, OrderLine
from app.orders.queries import lock_dealer_order
from app.returns.models import (
    HOLDING_STATUSES,
    RECEIVABLE_STATUSES,
    RETURNABLE_ORDER_STATUSES,
    SETTLED_STATUSES,
    STATUS_LABELS,
    ReturnEvent,
    ReturnLine,
    ReturnPhoto,
    ReturnReceipt,
    ReturnReceiptLine,
    ReturnRequest,
)
from app.storage.service import dealer_uploads

MAX_PHOTOS = 9  # wx.chooseImage picks at most 9
STAFF_PAGE_SIZE = 50

_LOADED = (
    selectinload(ReturnRequest.lines), selectinload(ReturnRequest.photos), selectinload(ReturnRequest.events),
    selectinload(ReturnRequest.refunds), selectinload(ReturnRequest.receipts).selectinload(ReturnReceipt.lines),
)


# --- dealer side ---------------------------------------------------------------------------

def create_return(*, user, order_no, lines, reason, photo_ids=()):
    """File a return request for goods of the dealer's own shipped order.

    `lines` are [{sku_id, qty}] (a SKU listed twice counts once, quantities added). Returns
    the new `ReturnRequest` (status `pending`). Raises 403 for a read-only user, 404 for
    another dealer's or an unknown order, 409 `order_not_returnable` before anything was
    shipped (or for a cancelled/rejected order), 422 `return_invalid` with every problem in
    `details.problems` (a SKU not in the order, more than may still be returned), 422
    `photo_not_found` listing photo ids that are not the dealer's own uploads. Nothing is
    written when it raises.
    """
    if user.role not in ORDERING_ROLES:
        raise DomainError("forbidden_role", "您的账号为只读角色，不能申请退货", 403)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("reason_required", "请填写退货原因", 422)
    photo_ids = list(dict.fromkeys(photo_ids or ()))
    if len(photo_ids) > MAX_PHOTOS:
        raise DomainError("too_many_photos", f"每个退货申请最多 {MAX_PHOTOS} 张照片", 422)
    wanted = {}
    for line in lines:
        wanted[line["sku_id"]] = wanted.get(line["sku_id"], 0) + line["qty"]

    with write_transaction() as session:
        check_may_act(session, user)
        order = lock_dealer_order(session, dealer_id=user.dealer_id, order_no=order_no)
        if order.status not in RETURNABLE_ORDER_STATUSES:
            raise DomainError(
                "order_not_returnable",
                f"订单当前状态为「{ORDER_STATUS_LABELS[order.status]}」，发货后才能申请退货",
                409, {"status": order.status},
            )
        order_lines = session.execute(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
            .execution_options(populate_existing=True)
        ).scalars().all()
        returnable = returnable_quantities(session, order_lines)
        by_sku = {line.sku_id: line for line in order_lines}
        problems = []
        for sku_id, qty in wanted.items():
            line = by_sku.get(sku_id)
            if line is None:
                problems.append({"code": "sku_not_in_order", "sku_id": sku_id, "message": "该商品不在这张订单里"})
            elif qty > returnable[line.id]:
                problems.append({
                    "code": "exceeds_returnable", "sku_id": sku_id, "requested": qty, "returnable": returnable[line.id],
                    "message": f"{line.name}：最多还能退 {returnable[line.id]} {line.unit}（已发货 {line.shipped_qty}，"
                               f"其他退货申请占用 {line.shipped_qty - returnable[line.id]}），申请了 {qty} {line.unit}",
                })
        if problems:
            raise DomainError("return_invalid", "退货数量有误，请按提示修改", 422, {"problems": problems})
        photos = dealer_uploads(session, dealer_id=user.dealer_id, upload_ids=photo_ids)
        missing = [pid for pid in photo_ids if pid not in photos]
        if missing:
            raise DomainError("photo_not_found", "照片不存在，请重新上传", 422, {"photo_ids": missing})

        count = session.execute(
            select(func.count()).select_from(ReturnRequest).where(ReturnRequest.order_id == order.id)
        ).scalar_one()
        now = utcnow()
        request = ReturnRequest(
            return_no=f"RT{order.order_no[2:]}-{count + 1}", order_id=order.id, dealer_id=user.dealer_id,
            requested_by_id=user.id, status="pending", reason=reason[:500], created_at=now, updated_at=now,
        )
        for sku_id, qty in wanted.items():
            line = by_sku[sku_id]
            request.lines.append(ReturnLine(
                order_line_id=line.id, sku_id=sku_id, sku_code=line.sku_code, name=line.name, spec=line.spec,
                unit=line.unit, qty=qty, unit_price_fen=line.unit_price_fen,
                amount_fen=line_amount(line.unit_price_fen, qty),
            ))
        request.refund_fen = sum(line.amount_fen for line in request.lines)
        request.photos = [ReturnPhoto(upload_id=pid, position=i) for i, pid in enumerate(photo_ids)]
        session.add(request)
        session.flush()
        _record_event(session, request, None, "pending", actor=user, actor_type="dealer_user", reason=reason, at=now)
        publish(session, "return.requested", request=request, order=order)
    return request


def returnable_quantities(session, order_lines):
    """{order_line_id: units that may still be returned} = shipped − asked for by open
    requests − taken back by received or closed ones."""
    ids = [line.id for line in order_lines]
    held_qty = case((ReturnRequest.status.in_(HOLDING_STATUSES), ReturnLine.qty), else_=ReturnLine.received_qty)
    held = dict(session.execute(
        select(ReturnLine.order_line_id, func.sum(held_qty))
        .join(ReturnRequest, ReturnRequest.id == ReturnLine.return_id)
        .where(ReturnLine.order_line_id.in_(ids), ReturnRequest.status.in_(HOLDING_STATUSES + SETTLED_STATUSES))
        .group_by(ReturnLine.order_line_id)
    ).all()) if ids else {}
    return {line.id: max(line.shipped_qty - int(held.get(line.id) or 0), 0) for line in order_lines}


def list_returns(*, dealer_id, status=None, page=1, page_size=20):
    """One page of the dealer's return requests, newest first: (requests, total)."""
    where = [ReturnRequest.dealer_id == dealer_id]
    if status:
        where.append(ReturnRequest.status == status)
    total = db.session.execute(select(func.count()).select_from(ReturnRequest).where(*where)).scalar_one()
    rows = db.session.execute(
        select(ReturnRequest).options(selectinload(ReturnRequest.lines), selectinload(ReturnRequest.order))
        .where(*where).order_by(ReturnRequest.id.desc()).limit(page_size).offset((page - 1) * page_size)
    ).scalars().all()
    return rows, total


def get_return(*, dealer_id, return_id):
    """The dealer's own return request; another dealer's id answers 404."""
    request = db.session.execute(
        select(ReturnRequest).options(*_LOADED, selectinload(ReturnRequest.order))
        .where(ReturnRequest.id == return_id, ReturnRequest.dealer_id == dealer_id)
    ).scalar_one_or_none()
    if request is None:
        raise NotFound("退货申请不存在", "return_not_found")
    return request


def withdraw_return(*, user, return_id, reason=None):
    """The dealer (owner/buyer) takes back its own request while it is still pending: it
    becomes `withdrawn` and its units may be asked for again. 404 for another dealer's or an
    unknown id, 403 for a read-only user, 409 `return_state_conflict` once staff decided."""
    if user.role not in ORDERING_ROLES:
        raise DomainError("forbidden_role", "您的账号为只读角色，不能撤回退货申请", 403)
    reason = (reason or "").strip()[:200] or "经销商撤回退货申请"
    with write_transaction() as session:
        check_may_act(session, user)
        request = session.execute(
            select(ReturnRequest).where(ReturnRequest.id == return_id, ReturnRequest.dealer_id == user.dealer_id)
            .with_for_update().execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if request is None:
            raise NotFound("退货申请不存在", "return_not_found")
        if request.status != "pending":
            raise DomainError(
                "return_state_conflict",
                f"退货申请当前状态为「{STATUS_LABELS[request.status]}」，只有待审核的申请才能撤回", 409,
                {"status": request.status},
            )
        now = utcnow()
        request.status, request.updated_at = "withdrawn", now
        _record_event(session, request, "pending", "withdrawn", actor=user, actor_type="dealer_user", reason=reason,
                      at=now)
    return request


# --- staff side ----------------------------------------------------------------------------

def _staff_query(staff):
    """Returns joined to their dealer, limited to the dealers `staff` may see."""
    query = select(ReturnRequest).join(Dealer, Dealer.id == ReturnRequest.dealer_id)
    return scope_to_staff(query, staff)


def list_returns_for_staff(*, staff, status=None, refund_status=None, q=None, page=1):
    """One page of return requests `staff` may see, newest first: ([(request, dealer, order_no)], total).
    Reps see their own dealers' requests; admin, warehouse and finance see all."""
    require(staff, "returns.view", "你没有查看退货的权限")
    query = scope_to_staff(
        select(ReturnRequest, Dealer, Order.order_no)
        .join(Dealer, Dealer.id == ReturnRequest.dealer_id).join(Order, Order.id == ReturnRequest.order_id),
        staff,
    )
    if status:
        query = query.where(ReturnRequest.status == status)
    if refund_status:
        query = query.where(ReturnRequest.refund_status == refund_status)
    if q:
        like = f"%{q}%"
        query = query.where(
            ReturnRequest.return_no.ilike(like) | Order.order_no.ilike(like) | Dealer.code.ilike(like)
            | Dealer.name.ilike(like)
        )
    total = db.session.execute(query.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)).scalar_one()
    rows = db.session.execute(
        query.options(selectinload(ReturnRequest.lines)).order_by(ReturnRequest.id.desc())
        .limit(STAFF_PAGE_SIZE).offset((page - 1) * STAFF_PAGE_SIZE)
    ).all()
    return rows, total


def count_failed_refunds(*, staff):
    """How many returns `staff` may see have a failed refund (the console's banner for finance)."""
    require(staff, "returns.view", "你没有查看退货的权限")
    return db.session.execute(
        _staff_query(staff).where(ReturnRequest.refund_status == "failed")
        .with_only_columns(func.count(), maintain_column_froms=True)
    ).scalar_one()


def get_return_for_staff(*, staff, return_id):
    """A return request `staff` may see (with lines, photos, events), or 404."""
    require(staff, "returns.view", "你没有查看退货的权限")
    request = db.session.execute(
        _staff_query(staff).options(*_LOADED, selectinload(ReturnRequest.order))
        .where(ReturnRequest.id == return_id)
    ).scalar_one_or_none()
    if request is None:
        raise NotFound("退货申请不存在，或不是你负责的经销商的", "return_not_found")
    return request


def _lock_for_staff(session, staff, return_id, expected, action):
    expected = (expected,) if isinstance(expected, str) else expected
    request = session.execute(
        _staff_query(staff).where(ReturnRequest.id == return_id).with_for_update(of=ReturnRequest)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if request is None:
        raise NotFound("退货申请不存在，或不是你负责的经销商的", "return_not_found")
    if request.status not in expected:
        raise DomainError(
            "return_state_conflict",
            f"退货单 {request.return_no} 当前状态为「{STATUS_LABELS[request.status]}」，不能{action}",
            409, {"status": request.status},
        )
    return request


def approve_return(*, staff, return_id, reason=None):
    """Agree to a pending return (admin; sales for their own dealers): the dealer may send
    the goods back. 404 for a request the staff member may not see, 409 once decided."""
    require(staff, "returns.decide", "你没有审核退货的权限")
    reason = (reason or "").strip()[:200] or None
    with write_transaction() as session:
        request = _lock_for_staff(session, staff, return_id, "pending", "同意")
        _transition(session, request, "approved", staff=staff, reason=reason or "同意退货", action="return.approve",
                    extra={"decided_by_id": staff.id, "decided_at": utcnow(), "decision_reason": reason})
    return request


def reject_return(*, staff, return_id, reason):
    """Refuse a pending return with a reason the dealer sees; its units may be asked for again."""
    require(staff, "returns.decide", "你没有审核退货的权限")
    reason = (reason or "").strip()[:200]
    if not reason:
        raise DomainError("reason_required", "拒绝退货需要填写原因（经销商可见）", 422)
    with write_transaction() as session:
        request = _lock_for_staff(session, staff, return_id, "pending", "拒绝")
        _transition(session, request, "rejected", staff=staff, reason=reason, action="return.reject",
                    extra={"decided_by_id": staff.id, "decided_at": utcnow(), "decision_reason": reason})
    return request


def receive_return(*, staff, return_id, warehouse_id, quantities=None):
    """Goods of an approved return arrived: add them to on-hand stock in `warehouse_id`
    (warehouse, admin) and refund what they are worth.

    `quantities` is {return line id: units that arrived} (0 or absent: none of that line);
    None takes in everything still outstanding. The return becomes `receiving` until every
    approved unit is in, then `received`. Returns (request, receipt, refunds made).
    Raises 422 `warehouse_not_found`, 422 `receipt_invalid` (every problem in
    `details.problems`: an unknown line, more than is outstanding, nothing at all), 404, 409
    unless approved or partly received. Audited with the on-hand figures before and after.
    Nothing is written when it raises."""
    require(staff, "returns.receive", "你没有退货入库的权限")
    if type(warehouse_id) is not int or warehouse_id < 1:
        raise DomainError("warehouse_not_found", "请选择入库仓库", 422)
    dealer_id = _dealer_of(staff, return_id)
    with write_transaction() as session:
        balances = ledger.lock_balances(session, dealer_id)
        request = _lock_for_staff(session, staff, return_id, RECEIVABLE_STATUSES, "入库")
        warehouse = session.get(Warehouse, warehouse_id)
        if warehouse is None:
            raise DomainError("warehouse_not_found", "入库仓库不存在", 422)
        if not warehouse.active:
            raise DomainError("warehouse_inactive", f"仓库 {warehouse.name} 已停用，请选择其他入库仓库", 422)
        lines = session.execute(
            select(ReturnLine).where(ReturnLine.return_id == request.id).order_by(ReturnLine.id)
            .execution_options(populate_existing=True)
        ).scalars().all()
        taking = _quantities_to_receive(lines, quantities)
        order = session.execute(select(Order).where(Order.id == request.order_id)
                                .execution_options(populate_existing=True)).scalar_one()
        amounts = _receipt_amounts(session, order, lines, taking)
        now = utcnow()
        receipt = ReturnReceipt(return_id=request.id, warehouse_id=warehouse.id, received_by_id=staff.id,
                                amount_fen=sum(amounts.values()), created_at=now)
        units = {}
        for line in lines:
            qty = taking.get(line.id, 0)
            if qty:
                line.received_qty += qty
                units[line.sku_id] = units.get(line.sku_id, 0) + qty
                receipt.lines.append(ReturnReceiptLine(return_line_id=line.id, qty=qty, amount_fen=amounts[line.id]))
        session.add(receipt)
        session.flush()
        before, after = _stock_in(session, warehouse.id, units)
        done = all(line.received_qty == line.qty for line in lines)
        count, received_fen = _receipt_totals(session, request.id)
        taken = "，".join(f"{line.name} × {taking[line.id]}{line.unit}" for line in lines if taking.get(line.id))
        _transition(
            session, request, "received" if done else "receiving", staff=staff,
            reason=f"第 {count} 次入库（{warehouse.name}）：{taken}，价值 {format_yuan(receipt.amount_fen)}",
            action="return.receive",
            extra={"received_by_id": staff.id, "received_at": now, "warehouse_id": warehouse.id},
            audit_before={"on_hand": before}, audit_after={"on_hand": after, "warehouse": warehouse.code,
                                                            "received_fen": receipt.amount_fen},
            notify=done, notify_amount_fen=received_fen,
        )
        made = refunding.refund_receipt(session, balances, request=request, order=order, receipt=receipt,
                                        amount_fen=receipt.amount_fen, actor=staff, actor_type="staff")
    refunding.submit_after_commit(made)
    return request, receipt, made


def _receipt_totals(session, return_id):
    """(number of receipts, what they are worth) of a return so far."""
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(ReturnReceipt.amount_fen), 0)).where(ReturnReceipt.return_id == return_id)
    ).one()
    return count, int(total)


def _dealer_of(staff, return_id):
    """The dealer of a return `staff` may see (no lock: the account lock comes first), or 404."""
    dealer_id = db.session.execute(
        _staff_query(staff).where(ReturnRequest.id == return_id).with_only_columns(ReturnRequest.dealer_id)
    ).scalar_one_or_none()
    db.session.rollback()
    if dealer_id is None:
        raise NotFound("退货申请不存在，或不是你负责的经销商的", "return_not_found")
    return dealer_id


def _quantities_to_receive(lines, quantities):
    """{return line id: units to take in now}, checked against what is outstanding."""
    if quantities is None:
        return {line.id: line.outstanding_qty for line in lines if line.outstanding_qty}
    by_id = {line.id: line for line in lines}
    problems = []
    for line_id, qty in quantities.items():
        line = by_id.get(line_id)
        if line is None:
            problems.append({"code": "line_not_in_return", "line_id": line_id, "message": "该商品不在这张退货单里"})
        elif type(qty) is not int or qty < 0:
            problems.append({"code": "qty_invalid", "line_id": line_id, "message": f"{line.name}：数量应为不小于 0 的整数"})
        elif qty > line.outstanding_qty:
            problems.append({
                "code": "exceeds_outstanding", "line_id": line_id, "requested": qty, "outstanding": line.outstanding_qty,
                "message": f"{line.name}：还待退回 {line.outstanding_qty} {line.unit}（申请 {line.qty}，已入库 "
                           f"{line.received_qty}），本次填了 {qty} {line.unit}",
            })
    taking = {line_id: qty for line_id, qty in quantities.items() if line_id in by_id and type(qty) is int and qty > 0}
    if not problems and not taking:
        problems.append({"code": "nothing_received", "message": "请至少填写一种商品的实收数量"})
    if problems:
        raise DomainError("receipt_invalid", "入库数量有误，请按提示修改", 422, {"problems": problems})
    return taking


def _receipt_amounts(session, order, lines, taking):
    """{return line id: what the units taken in now are worth}: unit price × qty
    (ROUND_HALF_UP per line, see `app.kernel.money`), capped so that all receipts of an order line
    never exceed what it was charged, and all receipts of the order never exceed its total."""
    order_line_ids = [line.order_line_id for line in lines if taking.get(line.id)]
    charged = dict(session.execute(
        select(OrderLine.id, OrderLine.amount_fen).where(OrderLine.id.in_(order_line_ids))
    ).all()) if order_line_ids else {}
    already = dict(session.execute(
        select(ReturnLine.order_line_id, func.sum(ReturnReceiptLine.amount_fen))
        .join(ReturnLine, ReturnLine.id == ReturnReceiptLine.return_line_id)
        .where(ReturnLine.order_line_id.in_(order_line_ids)).group_by(ReturnLine.order_line_id)
    ).all()) if order_line_ids else {}
    order_already = session.execute(
        select(func.coalesce(func.sum(ReturnReceipt.amount_fen), 0))
        .join(ReturnRequest, ReturnRequest.id == ReturnReceipt.return_id).where(ReturnRequest.order_id == order.id)
    ).scalar_one()
    order_room = max(order.total_fen - int(order_already), 0)
    amounts = {}
    for line in lines:
        qty = taking.get(line.id)
        if not qty:
            continue
        line_room = max(charged[line.order_line_id] - int(already.get(line.order_line_id) or 0), 0)
        amount = min(line_amount(line.unit_price_fen, qty), line_room, order_room)
        order_room -= amount
        amounts[line.id] = amount
    return amounts


def close_return(*, staff, return_id, reason):
    """End an approved or partly received return whose remaining goods will not come
    (admin, warehouse; sales for their own dealers): `closed`. What was received stays
    received and refunded; the units never received may be asked for again. 422 without a
    reason, 404, 409 in any other state."""
    require(staff, "returns.close", "你没有结束退货的权限")
    reason = (reason or "").strip()[:200]
    if not reason:
        raise DomainError("reason_required", "结束退货需要填写原因（经销商可见）", 422)
    with write_transaction() as session:
        request = _lock_for_staff(session, staff, return_id, RECEIVABLE_STATUSES, "结束")
        _count, received_fen = _receipt_totals(session, request.id)
        _transition(session, request, "closed", staff=staff, reason=reason, action="return.close",
                    audit_after={"received_fen": received_fen}, notify_amount_fen=received_fen)
    return request


def _stock_in(session, warehouse_id, units):
    """Add units to on-hand stock, rows locked in sku order (as every stock writer locks
    them): ({sku_code: on_hand before}, {sku_code: after})."""
    from app.catalog.models import Sku

    table = Stock.__table__
    skus = sorted(units)
    codes = dict(session.execute(select(Sku.id, Sku.code).where(Sku.id.in_(skus))).all())
    locked = dict(session.execute(
        select(table.c.sku_id, table.c.on_hand)
        .where(table.c.warehouse_id == warehouse_id, table.c.sku_id.in_(skus))
        .order_by(table.c.sku_id).with_for_update()
    ).all())
    before, after = {}, {}
    for sku_id in skus:
        current = locked.get(sku_id, 0)
        upsert = dialect_insert(session, table).values(
            sku_id=sku_id, warehouse_id=warehouse_id, on_hand=units[sku_id], reserved=0
        )
        session.execute(upsert.on_conflict_do_update(
            index_elements=[table.c.sku_id, table.c.warehouse_id], set_={"on_hand": table.c.on_hand + units[sku_id]},
        ))
        before[codes[sku_id]], after[codes[sku_id]] = current, current + units[sku_id]
    return before, after


def _transition(session, request, to_status, *, staff, reason, action, extra=None, audit_before=None,
                audit_after=None, notify=True, notify_amount_fen=None):
    previous = request.status
    now = utcnow()
    request.status = to_status
    request.updated_at = now
    for name, value in (extra or {}).items():
        setattr(request, name, value)
    audit.record(
        session, actor=staff, action=action, entity_type="return", entity_id=request.return_no,
        label=f"{request.return_no}（订单 {request.order.order_no}）",
        before={"status": previous, **(audit_before or {})},
        after={"status": to_status, "refund_fen": request.refund_fen, **(audit_after or {})}, reason=reason,
    )
    _record_event(session, request, previous, to_status, actor=staff, actor_type="staff", reason=reason, at=now)
    if notify:
        publish(session, "return.changed", request=request, order=request.order, to_status=to_status, reason=reason,
                amount_fen=notify_amount_fen)


def _record_event(session, request, from_status, to_status, *, actor, actor_type, reason=None, at=None):
    event = ReturnEvent(
        return_id=request.id, from_status=from_status, to_status=to_status, actor_type=actor_type,
        actor_id=actor.id, actor_name=actor.name, reason=(reason or None) and reason[:500], created_at=at or utcnow(),
    )
    request.events.append(event)  # (cascades into the session)
    return event


def list_warehouses():
    """The warehouses a return may be received into (the active ones), by priority."""
    return db.session.execute(select(Warehouse).where(Warehouse.active.is_(True))
                              .order_by(Warehouse.priority, Warehouse.id)).scalars().all()


def shipped_from(request):
    """The warehouse most of the returned lines' units were shipped from (None if unknown):
    the console offers it first when the goods come back."""
    from app.orders.models import ShipmentLine

    line_ids = [line.order_line_id for line in request.lines]
    if not line_ids:
        return None
    return db.session.execute(
        select(ShipmentLine.warehouse_id).where(ShipmentLine.order_line_id.in_(line_ids))
        .group_by(ShipmentLine.warehouse_id).order_by(func.sum(ShipmentLine.qty).desc(), ShipmentLine.warehouse_id)
        .limit(1)
    ).scalar_one_or_none()
