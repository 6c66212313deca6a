"""Imports every domain's models so SQLAlchemy and Alembic see the whole schema."""
from app.audience.models import AudienceTarget  # noqa: F401
from app.audit.models import AuditEntry  # noqa: F401
from app.campaigns.models import (  # noqa: F401
    Campaign,
    CampaignAttachment,
    CampaignGroup,
    CampaignSender,
    CustomerGroup,
)
from app.catalog.models import Category, Sku, VisibilityRule  # noqa: F401
from app.dealers.models import Address, Dealer, DealerUser, InviteCode, Region, Tier  # noqa: F401
from app.funds.models import (  # noqa: F401
    CreditAccount,
    CreditEntry,
    LedgerEntry,
    OfflinePayment,
    Payment,
    Refund,
    WechatPayOrder,
)
from app.inventory.models import Reservation, Stock, Warehouse  # noqa: F401
from app.kernel.settings import BrandSetting  # noqa: F401
from app.materials.models import Material, MaterialShare, MaterialTag  # noqa: F401
from app.notify.models import (  # noqa: F401
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
from app.policies.models import (  # noqa: F401
    Policy,
    PolicyAck,
    PolicyAttachment,
    PolicyDelivery,
    PolicyRead,
    PolicyReminder,
    PolicyVersion,
)
from app.pricing.models import PriceList, PriceListItem  # noqa: F401
from app.rebates.models import (  # noqa: F401
    RebateClose,
    RebateDocument,
    RebateDocumentLine,
    RebateRule,
    RebateTarget,
    RebateTier,
)
from app.reports.models import SalesTarget  # noqa: F401
from app.returns.models import (  # noqa: F401
    ReturnEvent,
    ReturnLine,
    ReturnPhoto,
    ReturnReceipt,
    ReturnReceiptLine,
    ReturnRequest,
)
from app.staff.models import Staff  # noqa: F401
from app.statements.models import Statement, StatementEvent, StatementLine  # noqa: F401
from app.storage.models import Upload  # noqa: F401
from app.tracking.models import ShipmentTracking, TrackingEvent  # noqa: F401
