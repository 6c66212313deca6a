"""A dealer's editable fields: their names and Chinese labels, who may change each, and the
checks a value must pass before `app.dealers.admin` writes it."""
import re
import unicodedata
from datetime import date, datetime

from sqlalchemy import or_, select

from app.dealers.models import Dealer, Region, Tier
from app.kernel.errors import DomainError
from app.kernel.money import MAX_INPUT_FEN, format_yuan
from app.kernel.permissions import can

DEALER_FIELDS = (
    "code", "name", "tier", "region_code", "rep", "contact_name", "contact_phone", "payment_terms_days",
    "contract_start", "contract_end", "annual_target_fen", "credit_limit_fen",
)
# The permission that lets one change each field of an existing dealer (a rep only on their
# own dealers). The rep keeps the dealer's contact up to date; finance owns payment terms and
# credit; the code never changes (orders, audit entries and spreadsheets refer to it).
FIELD_PERMISSIONS = {
    **dict.fromkeys(("name", "tier", "region_code", "rep", "contract_start", "contract_end", "annual_target_fen"),
                    "dealers.profile"),
    "contact_name": "dealers.contact", "contact_phone": "dealers.contact",
    "payment_terms_days": "dealers.credit", "credit_limit_fen": "dealers.credit",
}


def editable_fields(staff):
    """The fields of an existing dealer `staff` may change, in form order."""
    return tuple(field for field in DEALER_FIELDS[1:] if can(staff, FIELD_PERMISSIONS[field]))
FIELD_LABELS = {
    "code": "经销商编码", "name": "经销商名称", "tier": "等级", "region_code": "所在地区", "rep": "业务员",
    "contact_name": "联系人", "contact_phone": "联系电话", "payment_terms_days": "账期（天）",
    "contract_start": "合同开始日期", "contract_end": "合同结束日期", "annual_target_fen": "年度目标",
    "credit_limit_fen": "信用额度", "reason": "原因",
    # audit-only keys, for the dealer page's change history
    "status": "状态", "invite_role": "邀请角色", "expires_at": "有效期至",
}
MAX_PAYMENT_TERMS_DAYS = 365
MAX_REASON_LENGTH = 200
_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,31}")
_PHONE = re.compile(r"1[0-9]{10}|0[0-9]{2,3}-?[0-9]{7,8}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TEXT_LIMITS = {"name": 128, "contact_name": 64}


def dealer_validation_error(fields):
    """422 `validation_error` for {field: [message]}: the message lists every field in Chinese."""
    message = "；".join(f"{FIELD_LABELS.get(field, field)}：{'，'.join(messages)}" for field, messages in fields.items())
    return DomainError("validation_error", message, 422, {"fields": fields})



def clean_reason(reason, *, required=False):
    reason = (reason or "").strip() if isinstance(reason, str) or reason is None else None
    if reason is None:
        raise dealer_validation_error({"reason": ["应为文字"]})
    if required and not reason:
        raise dealer_validation_error({"reason": ["请填写原因"]})
    if len(reason) > MAX_REASON_LENGTH or _CONTROL.search(reason):
        raise dealer_validation_error({"reason": [f"不能超过 {MAX_REASON_LENGTH} 个字，且不能包含控制字符"]})
    return reason or None



# --- checking the values -------------------------------------------------------------------------

def _check_text(field, value, errors, *, required=False):
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.setdefault(field, []).append("不能为空")
        return None
    if not isinstance(value, str):
        errors.setdefault(field, []).append("应为文字")
        return None
    value = value.strip()
    if _CONTROL.search(value):
        errors.setdefault(field, []).append("不能包含控制字符")
    limit = _TEXT_LIMITS.get(field)
    if limit and len(value) > limit:
        errors.setdefault(field, []).append(f"不能超过 {limit} 个字")
    return value


def check_amount(field, value, errors):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.setdefault(field, []).append("金额应为整数（分）")
    elif value < 0:
        errors.setdefault(field, []).append("不能为负数")
    elif value > MAX_INPUT_FEN:
        errors.setdefault(field, []).append(f"不能超过 {format_yuan(MAX_INPUT_FEN)}")
    else:
        return value
    return None


def _find_tier(session, value):
    return session.execute(
        select(Tier).where(or_(Tier.code == value, Tier.name == value)).order_by(Tier.code != value).limit(1)
    ).scalar_one_or_none()


def _find_rep(session, value):
    """An active sales rep by username, else by name when exactly one rep has it."""
    from app.staff.models import Staff

    reps = select(Staff).where(Staff.role == "sales", Staff.active.is_(True))
    rep = session.execute(reps.where(Staff.username == value)).scalar_one_or_none()
    if rep is None:
        named = session.execute(reps.where(Staff.name == value).limit(2)).scalars().all()
        rep = named[0] if len(named) == 1 else None
    return rep


def checked_values(session, fields, dealer=None):
    """Column values for a new dealer (`dealer` None) or the changes to one, from typed fields.
    Collects every problem, then raises 422 naming them all; reads only, never writes."""
    errors, values = {}, {}
    creating = dealer is None

    def bad(field, message):
        errors.setdefault(field, []).append(message)

    if "code" in fields:
        code = _check_text("code", fields["code"], errors, required=True)
        if code is not None:
            code = unicodedata.normalize("NFKC", code).upper()
            if not _CODE.fullmatch(code):
                bad("code", "只能由字母、数字、- 和 _ 组成，最长 32 位，例如 D021")
            else:
                taken = session.execute(select(Dealer.name).where(Dealer.code == code)).scalar_one_or_none()
                if taken is not None and (creating or code != dealer.code):
                    bad("code", f"{code} 已被经销商“{taken}”使用")
                values["code"] = code
    if "name" in fields:
        name = _check_text("name", fields["name"], errors, required=True)
        if name is not None:
            query = select(Dealer.code).where(Dealer.name == name)
            if not creating:
                query = query.where(Dealer.id != dealer.id)
            other = session.execute(query.limit(1)).scalar_one_or_none()
            if other is not None:
                bad("name", f"与经销商 {other} 重名")
            values["name"] = name
    if "tier" in fields:
        tier = _check_text("tier", fields["tier"], errors, required=True)
        if tier is not None:
            found = _find_tier(session, tier)
            if found is None:
                bad("tier", f"等级“{tier}”不存在")
            else:
                values["tier_id"] = found.id
    if "region_code" in fields:
        region = _check_text("region_code", fields["region_code"], errors, required=True)
        if region is not None:
            if not re.fullmatch(r"[0-9]{6}", region):
                bad("region_code", "地区编码应为 6 位数字（GB/T 2260）")
            elif session.get(Region, region) is None:
                bad("region_code", f"地区编码 {region} 不存在")
            else:
                values["region_code"] = region
    if "rep" in fields:
        rep = _check_text("rep", fields["rep"], errors)
        if rep is None:
            values["rep_id"] = None
        elif not creating and dealer.rep is not None and rep in (dealer.rep.username, dealer.rep.name):
            values["rep_id"] = dealer.rep_id  # kept as is, even if the rep has left since
        else:
            found = _find_rep(session, rep)
            if found is None:
                bad("rep", f"业务员“{rep}”不存在或已停用（填写业务员的用户名）")
            else:
                values["rep_id"] = found.id
    if "contact_name" in fields:
        values["contact_name"] = _check_text("contact_name", fields["contact_name"], errors)
    if "contact_phone" in fields:
        phone = _check_text("contact_phone", fields["contact_phone"], errors)
        if phone is not None:
            phone = unicodedata.normalize("NFKC", phone).replace(" ", "")
            if not _PHONE.fullmatch(phone):
                bad("contact_phone", "请输入 11 位手机号或带区号的座机号")
        values["contact_phone"] = phone
    if "payment_terms_days" in fields:
        days = fields["payment_terms_days"]
        days = 0 if days is None else days
        if isinstance(days, bool) or not isinstance(days, int):
            bad("payment_terms_days", "应为整数天数")
        elif days < 0:
            bad("payment_terms_days", "不能小于 0（0 表示款到发货）")
        elif days > MAX_PAYMENT_TERMS_DAYS:
            bad("payment_terms_days", f"应在 0 到 {MAX_PAYMENT_TERMS_DAYS} 天之间（0 表示款到发货）")
        else:
            values["payment_terms_days"] = days
    for field in ("contract_start", "contract_end"):
        if field in fields:
            day = fields[field]
            if isinstance(day, datetime):
                day = day.date()
            if day is not None and not isinstance(day, date):
                bad(field, "应为日期")
            else:
                values[field] = day
    start = values.get("contract_start", None if creating else dealer.contract_start)
    end = values.get("contract_end", None if creating else dealer.contract_end)
    if start and end and end < start:
        bad("contract_end", "不能早于合同开始日期")
    if "annual_target_fen" in fields:
        values["annual_target_fen"] = check_amount("annual_target_fen", fields["annual_target_fen"], errors)
    if "credit_limit_fen" in fields:
        limit = fields["credit_limit_fen"]
        if limit is None and not creating:
            bad("credit_limit_fen", "不能为空（没有额度请填 0）")
        values["credit_limit_fen"] = check_amount("credit_limit_fen", limit, errors)
    if creating:
        for field in ("code", "name", "tier", "region_code"):
            if field not in fields:
                bad(field, "不能为空")
    if errors:
        raise dealer_validation_error(errors)
    return values

