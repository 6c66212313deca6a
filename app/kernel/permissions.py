"""Who may do what: one table from staff role to permissions, one way to check it.

Services call `require(staff, "orders.ship")` before they act; console views declare
`@login_required("orders.ship")`; templates ask `can("orders.ship")`; list queries go
through `scope_to_rep` so a rep sees only the dealers assigned to them. No role name is
compared anywhere else: a new role or a changed duty is one edit here.

A permission is granted only to an *active* staff member whose role holds it; `None` (no
one signed in) holds nothing.
"""
from app.kernel.errors import DomainError

ROLE_LABELS = {
    "admin": "管理员",
    "sales": "业务员",
    "finance": "财务",
    "warehouse": "仓库",
    "marketing": "市场",
}
STAFF_ROLES = tuple(ROLE_LABELS)

_ALL = frozenset(STAFF_ROLES)

# permission -> (what it lets one do, in Chinese, as in "你的角色无权{label}"; roles holding it)
PERMISSIONS = {
    # orders
    "orders.view": ("查看订单", {"admin", "sales", "finance", "warehouse"}),
    "orders.approve": ("审批订单", {"admin", "sales"}),  # the rep's step (final unless over credit)
    "orders.review_credit": ("复核超出信用额度的订单", {"admin", "finance"}),  # finance's step
    "orders.ship": ("发货", {"admin", "warehouse"}),
    # dealers
    "dealers.all": ("查看全部经销商", _ALL - {"sales"}),  # without it: only one's own dealers
    "dealers.view": ("查看经销商", {"admin", "sales", "finance"}),
    "dealers.edit": ("修改经销商", {"admin", "sales", "finance"}),  # which fields: dealers.profile
    "dealers.create": ("新建经销商", {"admin"}),
    "dealers.profile": ("修改经销商资料", {"admin"}),  # every field of the dealer form
    "dealers.contact": ("修改经销商联系人", {"admin", "sales"}),
    "dealers.credit": ("调整信用额度", {"admin", "finance"}),
    "dealers.status": ("暂停或恢复经销商", {"admin", "finance"}),
    "dealers.invite": ("生成邀请码", {"admin", "sales"}),
    "tiers.manage": ("管理经销商等级", {"admin"}),
    "regions.manage": ("维护地区", {"admin"}),
    # catalogue, prices, stock
    "catalog.view": ("查看商品", {"admin", "sales", "marketing", "warehouse"}),
    "catalog.edit": ("修改商品", {"admin"}),
    "catalog.prices": ("查看商品价格", {"admin", "sales", "finance", "marketing"}),
    "prices.view": ("查看价格", {"admin", "sales", "finance"}),
    "prices.edit": ("修改价格", {"admin", "finance"}),
    "stock.view": ("查看库存", {"admin", "sales", "warehouse"}),
    "stock.edit": ("调整库存", {"admin", "warehouse"}),
    "warehouses.manage": ("管理仓库", {"admin", "warehouse"}),
    # returns and money
    "returns.view": ("查看退货", {"admin", "sales", "warehouse", "finance"}),
    "returns.decide": ("审核退货", {"admin", "sales"}),
    "returns.receive": ("退货入库", {"admin", "warehouse"}),
    "returns.close": ("结束退货", {"admin", "warehouse", "sales"}),
    "refunds.retry": ("重试退款", {"admin", "finance"}),
    "payments.manage": ("处理付款", {"admin", "finance"}),
    "rebates.manage": ("管理返利", {"admin", "finance"}),
    "statements.manage": ("管理对账单", {"admin", "finance"}),
    # marketing
    "policies.view": ("查看政策", {"admin", "marketing", "sales"}),
    "policies.edit": ("编辑政策", {"admin", "marketing"}),
    "materials.view": ("查看素材", {"admin", "marketing", "sales"}),
    "materials.edit": ("管理素材", {"admin", "marketing"}),
    "groups.view": ("查看客户群", {"admin", "marketing", "sales"}),
    "campaigns.edit": ("管理客户群群发", {"admin", "marketing"}),
    # reports, audit, settings, the bot
    "reports.amounts": ("查看金额", {"admin", "sales", "finance"}),
    "reports.dealers": ("查看经销商排行", {"admin", "sales", "finance"}),
    "reports.targets": ("维护销售目标", {"admin", "finance"}),
    "audit.view": ("查看审计日志", {"admin", "finance"}),
    "settings.edit": ("修改系统设置", {"admin"}),
    "staff.manage": ("管理员工账号", {"admin"}),
    "bot.orders": ("在企业微信里查询订单", {"admin", "sales"}),
}

_HOLDERS = {name: frozenset(roles) for name, (_label, roles) in PERMISSIONS.items()}
assert all(holders <= _ALL for holders in _HOLDERS.values()), "a permission names an unknown role"


def can(staff, permission):
    """True when `staff` is active and its role holds `permission`. An unknown permission
    name is a programming error (KeyError), not a refusal."""
    holders = _HOLDERS[permission]
    return staff is not None and staff.active and staff.role in holders


def require(staff, permission, message=None):
    """Raise 403 `forbidden` unless `can(staff, permission)`. The message says, in Chinese,
    what was refused: `message` when given, else "你的角色无权<the permission's label>"."""
    if not can(staff, permission):
        raise DomainError("forbidden", message or f"你的角色无权{PERMISSIONS[permission][0]}", 403)


def roles_with(permission):
    """The roles holding `permission`, in the order of `STAFF_ROLES` (for menus and docs)."""
    return tuple(role for role in STAFF_ROLES if role in _HOLDERS[permission])


def sees_only_own_dealers(staff):
    """A rep sees only the dealers assigned to them; other roles every dealer."""
    return not can(staff, "dealers.all")


def scope_to_rep(query, staff, rep_column):
    """`query` limited to the dealers `staff` may see: for a rep, rows whose `rep_column`
    (a dealer's `rep_id`) is theirs; for every other role the query unchanged. Callers
    check separately that the role may act at all."""
    if sees_only_own_dealers(staff):
        return query.where(rep_column == staff.id)
    return query
