"""One test per handoff check ID (sophie_chat.E030 to E034, W025 to W027)."""

from __future__ import annotations

from tests.support.checks import BASE, ids, messages
from tests.support.handoff import handoff_settings

LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def handoff(**changes) -> dict:
    return {**BASE, "HANDOFF": handoff_settings(**changes)}


def found(**changes) -> list:
    return messages(DEBUG=True, CHANNEL_LAYERS=LAYER, SOPHIE_CHAT=handoff(**changes))


def test_a_valid_handoff_passes_the_checks():
    hours = {"mon": [("09:00", "12:00"), ("13:00", "24:00")], "sat": [["10:00", "14:00"]]}
    assert (
        ids(
            DEBUG=True,
            CHANNEL_LAYERS=LAYER,
            SOPHIE_CHAT=handoff(
                HOURS=hours,
                TIMEZONE="America/Sao_Paulo",
                HOLIDAYS=["2026-12-25"],
                NOTIFY=["team@example.com"],
            ),
        )
        == []
    )


def test_e030_hours_keyed_by_something_else_than_weekdays():
    result = found(HOURS={"monday": [("09:00", "18:00")]})
    assert [m.id for m in result] == ["sophie_chat.E030"]
    assert "'monday'" in result[0].msg
    assert result[0].hint


def test_e031_a_period_that_ends_before_it_starts():
    result = found(HOURS={"mon": [("18:00", "09:00")], "tue": [("9h", "18:00")]})
    assert [m.id for m in result] == ["sophie_chat.E031"]
    assert "mon" in result[0].msg
    assert "tue" in result[0].msg


def test_e032_an_unknown_time_zone():
    result = found(TIMEZONE="Mars/Olympus")
    assert [m.id for m in result] == ["sophie_chat.E032"]


def test_e033_a_holiday_that_is_not_a_date():
    result = found(HOLIDAYS=["25/12/2026"])
    assert [m.id for m in result] == ["sophie_chat.E033"]


def test_e034_handoff_without_a_channel_layer():
    result = messages(DEBUG=True, CHANNEL_LAYERS={}, SOPHIE_CHAT=handoff())
    assert [m.id for m in result] == ["sophie_chat.E034"]


def test_w025_a_wait_too_short_for_staff_to_notice():
    result = found(WAIT_TIMEOUT=5)
    assert [m.id for m in result] == ["sophie_chat.W025"]


def test_w026_a_notify_entry_that_is_not_an_address():
    result = found(NOTIFY=["support team"])
    assert [m.id for m in result] == ["sophie_chat.W026"]


def test_w027_hours_without_any_period():
    result = found(HOURS={"mon": [], "tue": []})
    assert [m.id for m in result] == ["sophie_chat.W027"]
