from flask import g

from app.dealers import addresses
from app.dealers.schemas import AddressIn, AddressList, AddressOut
from miniprogram_api.blueprint import MpBlueprint
from miniprogram_api.auth import BEARER_DOC, dealer_user_required

blp = MpBlueprint("addresses", __name__, url_prefix="/addresses", description="收货地址")


@blp.get("")
@blp.response(200, AddressList)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def list_addresses():
    """本经销商的收货地址（默认地址在前）"""
    return {"items": addresses.list_addresses(dealer_id=g.user.dealer_id)}


@blp.post("")
@blp.arguments(AddressIn)
@blp.response(201, AddressOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def add_address(body):
    """新增收货地址"""
    return addresses.add_address(user=g.user, **body)
