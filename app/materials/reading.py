"""Reading materials for the console (staff with `materials.view`): a page of them, the tags
in use, one material, who shared it."""
from sqlalchemy import and_, func, or_, select

from app.dealers.models import Dealer
from app.extensions import db
from app.kernel import inputs
from app.kernel.clock import business_today
from app.kernel.errors import NotFound
from app.kernel.permissions import require
from app.materials.models import KIND_LABELS, STATUS_LABELS, Material, MaterialShare, MaterialTag

STAFF_PAGE_SIZE = 30


def _escape_like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search(q):
    """SQL condition: title contains `q`, or one of the tags does (case-insensitive)."""
    pattern = f"%{_escape_like(q)}%"
    return or_(
        Material.title.ilike(pattern, escape="\\"),
        select(MaterialTag.material_id).where(MaterialTag.material_id == Material.id,
                                              MaterialTag.tag.ilike(pattern, escape="\\")).exists(),
    )


def tagged(tag):
    """SQL condition: the material carries `tag`."""
    return select(MaterialTag.material_id).where(MaterialTag.material_id == Material.id, MaterialTag.tag == tag).exists()


VALIDITY_LABELS = {"current": "今天有效", "upcoming": "尚未生效", "expired": "已过期"}


def _validity(validity, today):
    if validity == "current":
        return and_(or_(Material.valid_from.is_(None), Material.valid_from <= today),
                    or_(Material.valid_to.is_(None), Material.valid_to >= today))
    if validity == "upcoming":
        return Material.valid_from > today
    return Material.valid_to < today


def list_materials(*, staff, q=None, kind=None, status=None, tag=None, validity=None, page=1,
                   page_size=STAFF_PAGE_SIZE):
    """One page for the console, newest first: ([(Material, share count)], total). `validity`:
    current / upcoming / expired (China date today)."""
    require(staff, "materials.view", "你的角色无权查看素材")
    where = []
    if validity:
        inputs.choice(validity, field="validity", label="有效期", choices=VALIDITY_LABELS)
        where.append(_validity(validity, business_today()))
    if q:
        where.append(search(q))
    if kind:
        where.append(Material.kind == inputs.choice(kind, field="kind", label="类型", choices=KIND_LABELS))
    if status:
        where.append(Material.status == inputs.choice(status, field="status", label="状态", choices=STATUS_LABELS))
    if tag:
        where.append(tagged(tag))
    total = db.session.execute(select(func.count()).select_from(Material).where(*where)).scalar_one()
    shares = (select(func.count()).where(MaterialShare.material_id == Material.id)
              .correlate(Material).scalar_subquery())
    rows = db.session.execute(
        select(Material, shares.label("shares")).where(*where).order_by(Material.id.desc())
        .limit(page_size).offset((page - 1) * page_size)
    ).all()
    return rows, total


def all_tags():
    """Every tag in use, with how many materials carry it (for the console's filter)."""
    return db.session.execute(
        select(MaterialTag.tag, func.count()).group_by(MaterialTag.tag).order_by(func.count().desc(), MaterialTag.tag)
    ).all()


def get_material(*, staff, material_id):
    require(staff, "materials.view", "你的角色无权查看素材")
    material = db.session.get(Material, material_id)
    if material is None:
        raise NotFound("素材不存在", "material_not_found")
    return material


def share_stats(*, staff, material_id):
    """Who shared the material: ({"total", "dealers"}, [(dealer code, name, count, last shared at)])."""
    require(staff, "materials.view", "你的角色无权查看素材")
    rows = db.session.execute(
        select(Dealer.code, Dealer.name, func.count(MaterialShare.id), func.max(MaterialShare.created_at))
        .join(Dealer, Dealer.id == MaterialShare.dealer_id)
        .where(MaterialShare.material_id == material_id)
        .group_by(Dealer.code, Dealer.name)
        .order_by(func.count(MaterialShare.id).desc(), Dealer.code)
    ).all()
    return {"total": sum(r[2] for r in rows), "dealers": len(rows)}, rows
