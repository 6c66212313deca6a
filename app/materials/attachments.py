"""Materials as campaign attachments: `campaign_attachment(material_id)` is how campaigns
attach a material from the library."""
from dataclasses import dataclass

from flask import current_app

from app.extensions import db
from app.kernel.clock import business_today
from app.kernel.errors import DomainError, NotFound
from app.materials.dealer import detail_path
from app.materials.files import IMAGE_KINDS, thumb_url
from app.materials.models import Material
from app.storage import get_storage


@dataclass(frozen=True)
class CampaignAttachment:
    """A material as a WeCom customer-group message attachment (add_msg_template).

    `msgtype` is what WeCom calls it: "image" (image, poster), "video", "file", "link"
    (link; an article becomes a link only if it has a public URL, so articles are sent as
    "miniprogram" cards of the detail page), "miniprogram". Media (a picture, the video,
    the file, or the card's cover) must be uploaded to WeCom (media/upload) for its media_id:
    `media_bytes()` reads them from storage, `media_name` and `media_content_type` name
    them. Links carry `url`, `title`, `desc` and `picurl` (a signed URL of the cover, valid
    STORAGE_URL_TTL_SECONDS); cards carry `appid`, `page` (with ".html" before any query,
    as WeCom requires) and `title`, and always a cover (the thumbnail) in the media fields.
    """

    material_id: int
    msgtype: str
    title: str
    media_key: str | None = None
    media_name: str | None = None
    media_content_type: str | None = None
    url: str | None = None
    desc: str | None = None
    picurl: str | None = None
    appid: str | None = None
    page: str | None = None

    def media_bytes(self):
        return get_storage().get(self.media_key) if self.media_key else None


def _wecom_page(path):
    page, _, query = path.lstrip("/").partition("?")
    return page + ".html" + (f"?{query}" if query else "")


def campaign_attachment(material_id, *, on=None):
    """The material as a campaign attachment. It must be published and valid on `on` (a
    China date, default today): otherwise 422 `material_unusable` saying why; 404 for no such id.
    Who receives the campaign is the campaign's audience, not the material's."""
    material = db.session.get(Material, material_id)
    if material is None:
        raise NotFound("素材不存在", "material_not_found")
    day = on or business_today()
    if material.status != "published":
        raise DomainError("material_unusable", f"素材“{material.title}”尚未发布或已撤回，不能附加到群发", 422)
    if (material.valid_from and material.valid_from > day) or (material.valid_to and material.valid_to < day):
        raise DomainError("material_unusable", f"素材“{material.title}”在发送日不在有效期内", 422)
    base = {"material_id": material.id, "title": material.title}
    if material.kind in IMAGE_KINDS:
        return CampaignAttachment(**base, msgtype="image", media_key=material.file_key, media_name=material.file_name,
                                  media_content_type=material.file_content_type)
    if material.kind in ("video", "file"):
        return CampaignAttachment(**base, msgtype=material.kind, media_key=material.file_key,
                                  media_name=material.file_name, media_content_type=material.file_content_type)
    cover = {"media_key": material.thumb_key, "media_name": f"material-{material.id}.jpg",
             "media_content_type": "image/jpeg" if material.thumb_key else None}
    if material.kind == "article" and not material.thumb_key:
        # Sent as a mini-program card, whose pic_media_id WeCom requires.
        raise DomainError("material_unusable", f"图文“{material.title}”没有封面图，不能作为小程序卡片群发", 422)
    if material.kind == "link":
        return CampaignAttachment(**base, msgtype="link", url=material.link_url, desc=material.summary or None,
                                  picurl=thumb_url(material), **cover)
    if material.kind == "miniprogram":
        return CampaignAttachment(**base, msgtype="miniprogram", appid=material.mp_appid,
                                  page=_wecom_page(material.mp_path), **cover)
    return CampaignAttachment(**base, msgtype="miniprogram", appid=current_app.config["WECHAT_APP_ID"],
                              page=_wecom_page(detail_path(material)), **cover)
