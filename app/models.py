"""Imports every domain's models so SQLAlchemy and Alembic see the whole schema."""
from app.audience.models import AudienceTarget  # noqa: F401
from app.audit.models import AuditEntry  # noqa: F401
from app.catalog.models import Category, Sku, VisibilityRule  # noqa: F401
from app.dealers.models import Address, Dealer, DealerUser, InviteCode, Region, Tier  # noqa: F401
from app.funds.models import (  # noqa: F401
    CreditAccount,
    CreditEntry,
    LedgerEntry,
    Payment,
    WechatPayOrder,
)
from app.inventory.models import Reservation, Stock, Warehouse  # noqa: F401
from app.notify.models import (  # noqa: F401
    BrandSetting,
    DealerMessage,
    InboundEvent,
    Outbox,
    SubscribeConsent,
)
from app.orders.models import (  # noqa: F401
    CartItem,
    IdempotencyKey,
    Order,
    OrderEvent,
    OrderLine,
    OrderNoCounter,
    Shipment,
    ShipmentLine,
)
from app.pricing.models import PriceList, PriceListItem  # noqa: F401
from app.returns.models import ReturnEvent, ReturnLine, ReturnPhoto, ReturnRequest  # noqa: F401
from app.staff.models import Staff  # noqa: F401
from app.storage.models import Upload  # noqa: F401
from app.materials.models import Material, MaterialShare, MaterialTag  # noqa: F401
