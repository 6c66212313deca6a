import marshmallow as ma

from app.kernel.validation import DateTime, Int, Schema, Str


class UploadIn(Schema):
    file = ma.fields.Raw(
        required=True, error_messages={"required": "请选择要上传的图片（字段名 file）", "null": "不能为空值"},
        metadata={"type": "string", "format": "binary",
                  "description": "图片文件（JPG、PNG 或 WebP，按文件内容判断格式），大小上限见 UPLOAD_MAX_BYTES（默认 5 MB）"},
    )


class UploadOut(Schema):
    id = Int(required=True, metadata={"description": "图片 id：申请退货时放在 photo_ids 里"})
    url = Str(required=True, metadata={"description": "图片地址（有时效，默认 1 小时；过期后重新获取所在的退货单即可）"})
    content_type = Str(required=True, metadata={"description": "按文件内容识别的格式：image/jpeg、image/png 或 image/webp"})
    size = Int(required=True, metadata={"description": "字节数"})
    width = Int(required=True)
    height = Int(required=True)
    created_at = DateTime(required=True)
