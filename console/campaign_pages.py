"""Console: what the campaign pages read from their forms and what the detail page shows.
The rules stay in `app.campaigns`; this only turns form text into arguments and rows into
the page's view."""
from collections import defaultdict

from app.audience import service as audiences
from app.campaigns.authoring import MAX_ATTACHMENTS
from app.campaigns.groups import owner_names
from app.campaigns.limits import monthly_limit, remaining_this_month
from app.campaigns.planning import compute_plan
from app.campaigns.reading import frozen_plan, has_frozen_plan
from app.extensions import db
from app.kernel import inputs


def form_lines(text):
    """The form's links (「标题 | 链接 | 描述」) or mini-program cards (「标题 | 页面路径」), one a
    line: each non-empty line split at |, every part stripped."""
    return [[p.strip() for p in line.split("|")] for line in _lines(text)]


def _lines(text):
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def parse_material_ids(text):
    """Material ids typed as numbers separated by spaces or commas (at most MAX_ATTACHMENTS)."""
    words = (text or "").replace("，", " ").replace(",", " ").split()
    if len(words) > MAX_ATTACHMENTS:
        raise inputs.invalid("materials", f"附件最多 {MAX_ATTACHMENTS} 个")
    return list(dict.fromkeys(
        inputs.integer(w, field="materials", label="素材编号", minimum=1, maximum=2**53) for w in words))


def campaign_view(campaign):
    """Everything the detail page shows: the audience in words, and either the live plan (not
    sent yet) or the frozen one with per-sender and per-group states."""
    session = db.session
    audience = audiences.load("campaign", campaign.id, session=session)
    view = {"audience": audience, "audience_text": audiences.describe(audience, session=session),
            "limit": monthly_limit()}
    if campaign.status in ("draft", "scheduled", "cancelled") and not has_frozen_plan(session, campaign.id):
        plan = compute_plan(session, campaign)
        view["plan"] = plan
        view["owner_names"] = owner_names(session, list(plan["senders"]))
        return view
    senders, rows = frozen_plan(session, campaign.id)
    by_sender = defaultdict(list)
    for row in rows:
        by_sender[row.sender_id].append(row)
    remaining = remaining_this_month(session, [r.group_id for r in rows])
    counts = defaultdict(int)
    for row in rows:
        counts[row.status] += 1
    view.update(senders=senders, by_sender=by_sender, remaining=remaining, counts=dict(counts),
                owner_names=owner_names(session, [s.sender_userid for s in senders]))
    return view
