"""Materials for dealers: what is addressed to a dealer now, one of them, sharing it.

A dealer sees a material when it is published, valid today (China date; `valid_from` and
`valid_to` both included, either may be open) and addressed to it by the one audience rule
(`app.audience.service`, evaluated on the dealer's tier and region now). Anything else —
a draft, a withdrawn or expired material, one for other dealers, an unknown id — answers
the same 404, through `get_for_dealer`, the only way a dealer reaches a material.
"""
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import and_, func, or_, select

from app.audience import service as audience_service
from app.database import write_transaction
from app.dealers.models import Dealer, Tier
from app.extensions import db
from app.kernel.clock import business_today, utcnow
from app.kernel.errors import NotFound
from app.materials.files import IMAGE_KINDS, file_url, thumb_url
from app.materials.models import Material, MaterialShare, MaterialTag
from app.materials.reading import search, tagged

# The mini-program's own page that shows one material (articles, links, and the share
# card of anything that is not a picture). Share paths start with "/" as WeChat requires.
DETAIL_PAGE = "/pages/material/detail"


@dataclass(frozen=True)
class _Facts:
    code: str
    tier_code: str
    region_code: str


def _facts(dealer_id):
    """The dealer's code, tier and region as they are now (not as a cached caller says)."""
    row = db.session.execute(
        select(Dealer.code, Tier.code, Dealer.region_code).join(Tier, Tier.id == Dealer.tier_id)
        .where(Dealer.id == dealer_id)
    ).one()
    return _Facts(*row)


def _visible(facts, today):
    return and_(
        Material.status == "published",
        or_(Material.valid_from.is_(None), Material.valid_from <= today),
        or_(Material.valid_to.is_(None), Material.valid_to >= today),
        audience_service.visible_condition("material", Material.id, dealer_code=facts.code,
                                           tier_code=facts.tier_code, region_code=facts.region_code),
    )


def list_for_dealer(*, dealer_id, q=None, tag=None, kind=None, page=1, page_size=20):
    """Materials addressed to the dealer now, newest first: (materials, total, tags) where
    `tags` are [(tag, count)] over everything the dealer may see (filter chips)."""
    visible = _visible(_facts(dealer_id), business_today())
    where = [visible]
    if q:
        where.append(search(q))
    if tag:
        where.append(tagged(tag))
    if kind:
        where.append(Material.kind == kind)
    total = db.session.execute(select(func.count()).select_from(Material).where(*where)).scalar_one()
    materials = db.session.execute(
        select(Material).where(*where).order_by(Material.published_at.desc(), Material.id.desc())
        .limit(page_size).offset((page - 1) * page_size)
    ).scalars().all()
    tags = db.session.execute(
        select(MaterialTag.tag, func.count()).join(Material, Material.id == MaterialTag.material_id)
        .where(visible).group_by(MaterialTag.tag).order_by(func.count().desc(), MaterialTag.tag)
    ).all()
    return materials, total, tags


def get_for_dealer(*, dealer_id, material_id):
    """The material if the dealer may see it now; otherwise 404 `material_not_found`, the
    same for a draft, a withdrawn or expired material, another audience's, or no such id."""
    material = db.session.execute(
        select(Material).where(Material.id == material_id, _visible(_facts(dealer_id), business_today()))
    ).scalar_one_or_none()
    if material is None:
        raise NotFound("素材不存在或已下架", "material_not_found")
    return material


def share_material(*, user, material_id):
    """Record that the dealer's user is forwarding the material and return what to forward
    (`share_payload`). 404 as `get_for_dealer`."""
    material = get_for_dealer(dealer_id=user.dealer_id, material_id=material_id)
    with write_transaction() as session:
        session.add(MaterialShare(material_id=material.id, dealer_id=user.dealer_id, user_id=user.id,
                                  created_at=utcnow()))
    return material, share_payload(material)


def detail_path(material):
    return f"{DETAIL_PAGE}?id={material.id}"


def share_payload(material):
    """What the mini-program needs to forward the material to a customer group, by kind:

    - image / poster: `images` [{url, thumb_url}] — download with wx.downloadFile, then
      wx.showShareImageMenu({path: tempFilePath}) (send to a chat, save to the album);
    - video: `video` {url, thumb_url, file_name} for wx.downloadFile + wx.shareVideoMessage;
    - file: `file` {url, file_name, size} for wx.downloadFile + wx.shareFileMessage;
    - article / link / miniprogram: `share_app_message` {title, path, imageUrl} — exactly what
      Page.onShareAppMessage returns (path starts with "/", imageUrl a PNG/JPG shown at 5:4,
      absent when there is no cover); a mini-program card also has `miniprogram`
      {appid, path, title, image_url}; for a card of another mini-program the share path is
      our detail page, which opens it with wx.navigateToMiniProgram.
    Every payload has `kind`, `title` and `method` (which of the above to use).
    """
    base = {"kind": material.kind, "title": material.title}
    if material.kind in IMAGE_KINDS:
        return {**base, "method": "share_image_menu",
                "images": [{"url": file_url(material), "thumb_url": thumb_url(material)}]}
    if material.kind == "video":
        return {**base, "method": "share_video_message",
                "video": {"url": file_url(material), "thumb_url": thumb_url(material), "file_name": material.file_name}}
    if material.kind == "file":
        return {**base, "method": "share_file_message",
                "file": {"url": file_url(material, download=True), "file_name": material.file_name,
                         "size": material.file_size}}
    path = detail_path(material)
    if material.kind == "miniprogram" and material.mp_appid == current_app.config["WECHAT_APP_ID"]:
        path = "/" + material.mp_path
    card = {"title": material.title, "path": path}
    image = thumb_url(material)
    if image:
        card["imageUrl"] = image
    payload = {**base, "method": "share_app_message", "share_app_message": card}
    if material.kind == "link":
        payload["link_url"] = material.link_url
    if material.kind == "miniprogram":
        payload["miniprogram"] = {"appid": material.mp_appid, "path": "/" + material.mp_path,
                                  "title": material.title, "image_url": image}
    return payload
