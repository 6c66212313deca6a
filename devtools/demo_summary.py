"""The summary `flask --app wsgi demo seed` prints for `devtools.demo`: what was written,
the invites, the console accounts' one-time passwords, and tables that line up in a terminal."""
import unicodedata

from app.dealers.models import ROLE_LABELS
from app.kernel.clock import china_text
from app.kernel.permissions import ROLE_LABELS as STAFF_ROLE_LABELS
from app.orders.approval_rules import AutoApproval

LOGIN_HINT = "在本地微信模拟服务页面获取登录 code，然后 POST /api/mp/v1/auth/login"


# --- output --------------------------------------------------------------------------------------------

def _width(text):
    """Columns `text` takes in a terminal (CJK characters are two wide)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _table(header, rows):
    widths = [max(_width(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return [
        "  " + "  ".join(cell + " " * (width - _width(cell)) for cell, width in zip(row, widths)).rstrip()
        for row in (header, *rows)
    ]


def _count_lines(brand, seeded):
    regions, dealers, skus = seeded["regions"], seeded["dealers"].values(), seeded["skus"].values()
    warehouses, lists = seeded["warehouses"], seeded["price_lists"]
    suspended = sum(dealer.status != "active" for dealer in dealers)
    inactive = sum(sku.status != "active" for sku in skus)
    expired = sum(price_list.valid_to is not None for price_list in lists)
    dealer_lists = sum(price_list.kind == "dealer" for price_list in lists)
    return [
        f"已写入「{brand}」演示数据：",
        f"  地区 {len(regions['provinces']) + len(regions['cities'])} 个"
        f"（省级 {len(regions['provinces'])}，市级 {len(regions['cities'])}）",
        f"  经销商等级 {len(seeded['tiers'])} 个，业务员 {len(seeded['reps'])} 名",
        f"  经销商 {len(dealers)} 家（暂停 {suspended} 家），每家含默认收货地址和信用账户",
        f"  商品分类 {len(seeded['categories'])} 个，商品 {len(skus)} 个（下架 {inactive} 个）",
        f"  仓库 {len(warehouses)} 个（{'、'.join(w.name for w in warehouses)}），"
        f"库存记录 {len(skus) * len(warehouses)} 条",
        f"  价格表 {len(lists)} 张（等级价 {len(lists) - dealer_lists - expired}，"
        f"经销商专属价 {dealer_lists}，已过期 {expired}）",
        f"  可见性规则 {len(seeded['rules'])} 条",
    ]


def _invite_lines(seeded):
    invites = seeded["invites"]
    dealers = {dealer.id: dealer for dealer in seeded["dealers"].values()}
    rows = [
        (dealers[invite.dealer_id].code, dealers[invite.dealer_id].name, ROLE_LABELS[invite.role], invite.code)
        for invite in invites
    ]
    return [
        f"邀请码（一次性，{china_text(invites[0].expires_at)} 前有效）：",
        *_table(("经销商", "名称", "角色", "邀请码"), rows),
    ]


def _summary_lines(brand, seeded):
    return [
        *_count_lines(brand, seeded),
        "",
        *_invite_lines(seeded),
        "",
        f"登录测试：{LOGIN_HINT}，再用上面的邀请码绑定经销商。",
        "",
        "管理后台 http://127.0.0.1:5000/console/ 的员工账号（密码只显示这一次）：",
        *_table(("用户名", "角色", "密码"), [(u, STAFF_ROLE_LABELS[r], p) for u, r, p in seeded["console"]]),
        "",
        AutoApproval(enabled=False).describe() + "；开启：.venv/bin/flask --app wsgi settings auto-approval --on",
    ]
