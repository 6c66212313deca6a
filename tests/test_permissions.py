"""The permission table: each role × each permission, in the kernel, the console and the bot.

`EXPECTED` is the product's statement of duties, written out here independently of
`app/kernel/permissions.py`: a change to who may do what must change both.
"""
import pytest

from app.kernel import permissions
from app.kernel.errors import DomainError
from app.kernel.permissions import can, require, roles_with, scope_to_rep
from tests.helpers import HTML, console_login

A, S, F, W, M = "admin", "sales", "finance", "warehouse", "marketing"

EXPECTED = {
    "orders.view": {A, S, F, W},
    "orders.approve": {A, S},
    "orders.review_credit": {A, F},
    "orders.ship": {A, W},
    "dealers.all": {A, F, W, M},
    "dealers.view": {A, S, F},
    "dealers.edit": {A, S, F},
    "dealers.create": {A},
    "dealers.profile": {A},
    "dealers.contact": {A, S},
    "dealers.credit": {A, F},
    "dealers.status": {A, F},
    "dealers.invite": {A, S},
    "tiers.manage": {A},
    "regions.manage": {A},
    "catalog.view": {A, S, M, W},
    "catalog.edit": {A},
    "catalog.prices": {A, S, F, M},
    "prices.view": {A, S, F},
    "prices.edit": {A, F},
    "stock.view": {A, S, W},
    "stock.edit": {A, W},
    "warehouses.manage": {A, W},
    "returns.view": {A, S, W, F},
    "returns.decide": {A, S},
    "returns.receive": {A, W},
    "returns.close": {A, W, S},
    "refunds.retry": {A, F},
    "payments.manage": {A, F},
    "rebates.manage": {A, F},
    "statements.manage": {A, F},
    "policies.view": {A, M, S},
    "policies.edit": {A, M},
    "materials.view": {A, M, S},
    "materials.edit": {A, M},
    "groups.view": {A, M, S},
    "campaigns.edit": {A, M},
    "reports.amounts": {A, S, F},
    "reports.dealers": {A, S, F},
    "reports.targets": {A, F},
    "audit.view": {A, F},
    "settings.edit": {A},
    "staff.manage": {A},
    "bot.orders": {A, S},
}


class Person:
    def __init__(self, role, active=True, id=7):
        self.role, self.active, self.id = role, active, id


def test_the_table_names_exactly_the_expected_permissions():
    assert set(permissions.PERMISSIONS) == set(EXPECTED)
    assert permissions.STAFF_ROLES == (A, S, F, W, M)


@pytest.mark.parametrize("permission", sorted(EXPECTED))
@pytest.mark.parametrize("role", [A, S, F, W, M])
def test_each_role_holds_exactly_its_permissions(role, permission):
    assert can(Person(role), permission) is (role in EXPECTED[permission])


def test_inactive_staff_and_nobody_hold_nothing():
    for permission in EXPECTED:
        assert not can(None, permission)
        assert not can(Person(A, active=False), permission)


def test_an_unknown_permission_is_a_programming_error_not_a_refusal():
    with pytest.raises(KeyError):
        can(Person(A), "orders.teleport")


def test_require_refuses_in_chinese_with_the_permissions_label_or_the_callers_message():
    with pytest.raises(DomainError) as refused:
        require(Person(W), "prices.edit")
    assert (refused.value.status, refused.value.code, refused.value.message) == (403, "forbidden", "你的角色无权修改价格")
    with pytest.raises(DomainError) as refused:
        require(None, "orders.ship", "你没有发货的权限（仅仓库与管理员）")
    assert refused.value.message == "你没有发货的权限（仅仓库与管理员）"
    require(Person(W), "orders.ship")  # holds it: no error


def test_roles_with_lists_holders_in_role_order():
    assert roles_with("returns.close") == (A, S, W)


def test_only_a_rep_is_scoped_to_their_own_dealers():
    from sqlalchemy import column, select

    rep_id = column("rep_id")
    query = select(rep_id)
    scoped = scope_to_rep(query, Person(S, id=42), rep_id)
    assert "rep_id = :rep_id_1" in str(scoped) and scoped.compile().params == {"rep_id_1": 42}
    for role in (A, F, W, M):
        assert scope_to_rep(query, Person(role), rep_id) is query


# --- the console: every menu page opens for exactly the roles the table says ---------------

NAV_PAGES = [(path, needed) for _label, path, needed in __import__("console.auth", fromlist=["NAV"]).NAV]
USERNAMES = {A: "boss", S: "rep1", F: "money", W: "cang", M: "shi"}


def _holders(needed):
    if not needed:
        return {A, S, F, W, M}
    return set().union(*(EXPECTED[name] for name in needed))


@pytest.mark.parametrize("role", [A, S, F, W, M])
def test_each_console_page_opens_for_the_roles_holding_its_permission_and_no_other(app, client, staff, role):
    console_login(client, USERNAMES[role])
    menu = client.get("/console/", headers=HTML).get_data(as_text=True)
    for path, needed in NAV_PAGES:
        status = client.get(path, headers=HTML).status_code
        if role in _holders(needed):
            assert status == 200, (role, path)
            assert f'href="{path}"' in menu, (role, path)
        else:
            assert status == 403, (role, path)
            assert f'href="{path}"' not in menu, (role, path)


@pytest.mark.parametrize("role", [A, S, F, W, M])
def test_a_menu_group_shows_only_when_one_of_its_pages_opens_for_the_role(app, client, staff, role):
    from console.auth import NAV_GROUPS

    console_login(client, USERNAMES[role])
    menu = client.get("/console/", headers=HTML).get_data(as_text=True)
    for group, entries in NAV_GROUPS:
        if group is not None:
            opens = any(role in _holders(needed) for _label, _path, needed in entries)
            assert (f"<h2>{group}</h2>" in menu) is opens, (role, group)


def test_the_bot_answers_order_questions_only_for_roles_holding_bot_orders(app, staff):
    from bots.commands import may_use

    for key, person in staff.items():
        assert may_use(person) is (person.role in EXPECTED["bot.orders"]), key
