"""The kernel's brand settings: every key is declared with its type, default and check."""
import logging

import pytest

from app.database import write_transaction
from app.extensions import db
from app.kernel import settings
from app.kernel.errors import DomainError
from app.kernel.settings import AUTO_APPROVAL, REBATE_USAGE, REGISTRY, AutoApproval, BrandSetting


def stored(key):
    db.session.rollback()
    row = db.session.get(BrandSetting, key)
    return None if row is None else row.value


def test_every_setting_is_declared_once_with_a_default_that_passes_its_own_check():
    assert set(REGISTRY) == {"auto_approval", "rebate_usage", "delivery_completes_order"}
    for key, setting in REGISTRY.items():
        assert setting.key == key and setting.label
        assert setting.problem(setting.default) is None
        assert setting.load(setting.dump(setting.default)) == setting.default


def test_a_setting_never_written_reads_as_its_default(app):
    assert settings.read(db.session, AUTO_APPROVAL) == AutoApproval()
    assert settings.read(db.session, REBATE_USAGE) == 3000


def test_typed_values_round_trip_as_json(app):
    with write_transaction() as session:
        settings.write(session, AUTO_APPROVAL, AutoApproval(True, 500))
        settings.write(session, REBATE_USAGE, 1250)
    assert stored("auto_approval") == {"enabled": True, "max_total_fen": 500}
    assert stored("rebate_usage") == {"max_rate_bp": 1250}
    assert settings.read(db.session, AUTO_APPROVAL) == AutoApproval(True, 500)
    assert settings.read(db.session, REBATE_USAGE) == 1250


@pytest.mark.parametrize(("setting", "value", "message"), [
    (AUTO_APPROVAL, AutoApproval("yes"), "enabled 应为 true 或 false"),
    (AUTO_APPROVAL, AutoApproval(True, 0), "单笔上限应为正整数（单位：分）"),
    (AUTO_APPROVAL, AutoApproval(True, 10**15 + 1), "单笔上限应为正整数（单位：分）"),
    (REBATE_USAGE, 10_001, "返利抵扣比例应在 0%～100% 之间（最多两位小数）"),
    (REBATE_USAGE, 12.5, "返利抵扣比例应在 0%～100% 之间（最多两位小数）"),
    (REBATE_USAGE, True, "返利抵扣比例应在 0%～100% 之间（最多两位小数）"),
])
def test_a_bad_value_is_refused_in_chinese_and_nothing_is_written(app, setting, value, message):
    with pytest.raises(DomainError) as refused, write_transaction() as session:
        settings.write(session, setting, value)
    assert (refused.value.code, refused.value.status, refused.value.message) == ("invalid_setting", 422, message)
    assert stored(setting.key) is None


@pytest.mark.parametrize("value", [{"max_rate_bp": "30"}, {"max_rate_bp": 10_001}, [3000], {}])
def test_a_malformed_stored_value_reads_as_the_default_and_is_logged(app, caplog, value):
    db.session.merge(BrandSetting(key="rebate_usage", value=value))
    db.session.commit()
    with caplog.at_level(logging.WARNING, logger="app.kernel.settings"):
        assert settings.read(db.session, REBATE_USAGE) == 3000
    assert "brand setting rebate_usage is malformed" in caplog.text and "using 3000 bp" in caplog.text
