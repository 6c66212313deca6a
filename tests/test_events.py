"""The event publisher: one event per change, reaching each subscriber once, in the change's
own transaction; the core publishes, `create_app` wires the subscribers."""
import pytest
from sqlalchemy import select

from app.audience import service as audiences
from app.database import write_transaction
from app.extensions import db
from app.kernel import events
from app.notify import service as outbox
from app.notify.models import Outbox
from app.policies import authoring
from bots import announce
from tests.test_policies import fields


@pytest.fixture
def recorded(app):
    """Subscribe a recorder to every declared event for one test; returns its list of calls."""
    calls = []

    def recorder_for(name):
        def record(session, **payload):
            calls.append((name, session, payload))
        return record

    added = [(name, recorder_for(name)) for name in events.EVENTS]
    for name, handler in added:
        events.subscribe(app, name, handler)
    yield calls
    for name, handler in added:
        events.unsubscribe(app, name, handler)


def test_create_app_wires_the_announcements_as_subscribers(app):
    assert events.subscribers("policy.published", app) == (announce.policy_published,)
    assert events.subscribers("campaign.sending", app) == (announce.campaign_sending,)


def test_publishing_a_policy_publishes_one_event_that_each_subscriber_gets_once(app, staff, recorded):
    marketing = staff["marketing"]
    policy = authoring.create_policy(staff=marketing, fields=fields(), audience=audiences.parse({"all": True}))
    assert recorded == []  # a draft is not news
    authoring.publish_policy(staff=marketing, policy_id=policy.id)
    [(name, _session, payload)] = recorded
    assert name == "policy.published" and payload["policy"].id == policy.id and payload["changes"] in ([], None)
    robot = db.session.execute(select(Outbox).where(Outbox.channel == "wecom_robot")).scalars().all()
    assert [r.dedupe_key for r in robot] == [f"policy:{policy.id}:v1:wecom_robot:default"]


def test_subscribers_run_inside_the_writing_transaction_and_roll_back_with_it(app, staff, recorded):
    policy = authoring.create_policy(staff=staff["marketing"], fields=fields(), audience=audiences.parse({"all": True}))

    def boom(session, **payload):
        raise RuntimeError("subscriber failed")

    events.subscribe(app, "policy.published", boom)
    try:
        with pytest.raises(RuntimeError), write_transaction() as session:
            outbox.add(session, channel="wecom_robot", event="announcement", recipient="default",
                       payload={"msgtype": "markdown", "markdown": {"content": "x"}}, dedupe_key="written-before-the-event")
            events.publish(session, "policy.published", policy=session.get(type(policy), policy.id), changes=[])
    finally:
        events.unsubscribe(app, "policy.published", boom)
    assert [name for name, _s, _p in recorded] == ["policy.published"]  # ran before the failing one
    assert db.session.execute(select(Outbox)).first() is None  # neither the change's row nor the announcement


def test_a_payload_that_does_not_match_the_declaration_is_refused(app):
    with pytest.raises(TypeError), write_transaction() as session:
        events.publish(session, "policy.published", policy=None)
    with pytest.raises(KeyError):
        events.subscribe(app, "policy.publishd", lambda session, **payload: None)


def test_the_same_subscriber_twice_is_refused(app):
    with pytest.raises(ValueError):
        events.subscribe(app, "policy.published", announce.policy_published)


def test_every_declared_event_has_subscribers_that_accept_exactly_its_arguments(app):
    import inspect

    for name, arguments in events.EVENTS.items():
        handlers = events.subscribers(name, app)
        assert handlers, f"{name} is declared but nobody subscribes"
        for handler in handlers:
            inspect.signature(handler).bind("session", **dict.fromkeys(arguments))  # raises TypeError if not
