import marshmallow as ma

from app.kernel.validation import (
    DateTime,
    Int,
    Nested,
    PageQuery,
    Schema,
    Str,
    length,
    one_of,
)
from app.materials.models import KIND_LABELS

KIND_DOC = "、".join(f"{k} {v}" for k, v in KIND_LABELS.items())


class MaterialListQuery(PageQuery):
    q = Str(validate=length(max=64), metadata={"description": "按标题或标签搜索"})
    tag = Str(validate=length(max=16), metadata={"description": "只看带这个标签的（取值见返回的 tags）"})
    kind = Str(validate=one_of(tuple(KIND_LABELS), KIND_LABELS), metadata={"description": f"类型：{KIND_DOC}"})


class TagCountOut(Schema):
    tag = Str(required=True)
    count = Int(required=True, metadata={"description": "本经销商可见的素材中带这个标签的数量"})


class MaterialSummaryOut(Schema):
    id = Int(required=True)
    kind = Str(required=True, metadata={"description": f"类型：{KIND_DOC}"})
    kind_label = Str(required=True)
    title = Str(required=True)
    summary = Str(required=True)
    tags = ma.fields.List(Str(), required=True)
    thumb_url = Str(allow_none=True, metadata={"description": "缩略图（JPEG，长边不超过 MATERIAL_THUMBNAIL_PX，有时效）；没有图片或封面时为 null"})
    published_at = DateTime(required=True)
    valid_to = ma.fields.Date(allow_none=True, metadata={"description": "有效期最后一天（含）；null 为长期"})


class MaterialPage(Schema):
    items = Nested(MaterialSummaryOut, many=True, required=True)
    page = Int(required=True)
    page_size = Int(required=True)
    total = Int(required=True)
    tags = Nested(TagCountOut, many=True, required=True, metadata={"description": "筛选标签（不受 q、tag、kind 影响）"})


class MaterialFileOut(Schema):
    url = Str(required=True, metadata={"description": "文件地址（有时效，默认 1 小时），用于预览或播放"})
    download_url = Str(required=True, metadata={"description": "下载地址：以附件形式返回，文件名为 file_name"})
    file_name = Str(required=True)
    content_type = Str(required=True, metadata={"description": "按文件内容识别的类型"})
    size = Int(required=True, metadata={"description": "字节数"})
    width = Int(allow_none=True)
    height = Int(allow_none=True)


class MiniprogramOut(Schema):
    appid = Str(required=True)
    path = Str(required=True, metadata={"description": "以 / 开头的页面路径，可带参数"})


class MaterialOut(MaterialSummaryOut):
    valid_from = ma.fields.Date(allow_none=True)
    body_html = Str(allow_none=True, metadata={"description": "图文正文（已过滤的 HTML，可直接给 rich-text 组件）"})
    link_url = Str(allow_none=True)
    cover_url = Str(allow_none=True, metadata={"description": "封面图（视频的封面、卡片封面）"})
    file = Nested(MaterialFileOut, allow_none=True, metadata={"description": "图片、海报、视频、文件类素材的文件"})
    miniprogram = Nested(MiniprogramOut, allow_none=True)


class ShareImageOut(Schema):
    url = Str(required=True)
    thumb_url = Str(allow_none=True)


class ShareVideoOut(Schema):
    url = Str(required=True)
    thumb_url = Str(allow_none=True, metadata={"description": "封面（没有上传封面时为 null）"})
    file_name = Str(required=True)


class ShareFileOut(Schema):
    url = Str(required=True)
    file_name = Str(required=True)
    size = Int(required=True)


class ShareAppMessageOut(Schema):
    title = Str(required=True)
    path = Str(required=True, metadata={"description": "以 / 开头的小程序页面路径"})
    imageUrl = Str(metadata={"description": "分享卡片图片（JPEG，显示比例 5:4）；没有封面时不返回，由微信截图"})


class ShareMiniprogramOut(Schema):
    appid = Str(required=True)
    path = Str(required=True)
    title = Str(required=True)
    image_url = Str(allow_none=True)


class ShareOut(Schema):
    kind = Str(required=True)
    title = Str(required=True)
    method = Str(required=True, metadata={"description": (
        "怎样转发：share_image_menu（images 逐张 wx.downloadFile 后 wx.showShareImageMenu）、"
        "share_video_message（wx.downloadFile 后 wx.shareVideoMessage）、share_file_message"
        "（wx.downloadFile 后 wx.shareFileMessage）、share_app_message（在 onShareAppMessage 中返回 share_app_message）")})
    images = Nested(ShareImageOut, many=True)
    video = Nested(ShareVideoOut)
    file = Nested(ShareFileOut)
    share_app_message = Nested(ShareAppMessageOut, metadata={"description": "Page.onShareAppMessage 的返回值"})
    link_url = Str()
    miniprogram = Nested(ShareMiniprogramOut)
