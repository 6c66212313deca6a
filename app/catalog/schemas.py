from app.kernel.validation import (
    Int,
    Nested,
    PageQuery,
    QueryInt,
    Schema,
    Str,
    id_field,
    int_range,
    length,
    one_of,
    pre_load,
    regexp,
    ValidationError,
)
from app.catalog.service import AFTER_PATTERN

STOCK_LEVELS = ("in_stock", "low", "out")
STOCK_LEVEL_LABELS = {"in_stock": "有货", "low": "库存紧张", "out": "缺货"}


class CategoryOut(Schema):
    id = Int(required=True)
    name = Str(required=True)
    parent_id = Int(allow_none=True)


class CategoryList(Schema):
    items = Nested(CategoryOut, many=True, required=True)


class ProductQuery(PageQuery):
    category_id = QueryInt(validate=int_range(1, 2**53 - 1))
    q = Str(validate=length(1, 50), metadata={"description": "按名称、编码或规格搜索"})
    after = Str(validate=regexp(AFTER_PATTERN, "翻页位置无效，请从第一页重新加载"), metadata={
        "description": "上一页返回的 next_after：从上一页最后一件商品之后接着取（滚动加载用它，"
                       "翻到很深也和第一页一样快）；同样的 category_id、q、page_size；不要同时给 page"})

    @pre_load
    def _after_or_page(self, data, **kwargs):
        if "after" in data and "page" in data:
            raise ValidationError("after 与 page 只能给一个", "page")
        return data


class StockOut(Schema):
    available = Int(required=True)
    level = Str(required=True, validate=one_of(STOCK_LEVELS, STOCK_LEVEL_LABELS), metadata={"description": "in_stock 有货 / low 库存紧张 / out 缺货"})


class ProductOut(Schema):
    id = id_field(required=True, metadata={"description": "SKU id，下单时用作 sku_id"})
    code = Str(required=True)
    name = Str(required=True)
    spec = Str(required=True)
    unit = Str(required=True)
    pack_size = Int(required=True)
    moq = Int(required=True, metadata={"description": "起订量"})
    step = Int(required=True, metadata={"description": "订购数量须为其整数倍"})
    price_fen = Int(required=True, metadata={"description": "本经销商的单价（分）"})
    list_price_fen = Int(required=True, metadata={"description": "建议零售/目录价（分）"})
    price_source = Str(required=True, metadata={"description": "dealer 专属价 / tier 等级价 / list 目录价"})
    category_id = Int(required=True)
    image_url = Str(required=True, allow_none=True, metadata={
        "description": "商品图片地址（https，带签名、约 1 小时后过期，请勿长期保存）；没有图片时为 null"})
    stock = Nested(StockOut, required=True)


class ProductPage(Schema):
    items = Nested(ProductOut, many=True, required=True)
    page = Int(required=True)
    page_size = Int(required=True)
    total = Int(required=True)
    next_after = Str(required=True, allow_none=True, metadata={
        "description": "下一页的位置，原样传给 after；已是最后一页时为 null"})
