"""One test per tools check ID (sophie_chat.E020 to E024, W020 to W022)."""

from __future__ import annotations

from tests.support.checks import BASE, ids, messages

TOOLS = "tests.support.tools"


def tools(*names: str, **extra) -> dict:
    return {
        **BASE,
        "TOOLS": [f"{TOOLS}.{name}" if "." not in name else name for name in names],
        **extra,
    }


def test_valid_tools_pass_the_checks():
    assert ids(DEBUG=True, SOPHIE_CHAT=tools("my_profile", "rename_me", "entry_count", "add")) == []


def test_e020_an_entry_that_cannot_be_imported():
    found = messages(DEBUG=True, SOPHIE_CHAT=tools("tests.support.tools.nope"))
    assert [m.id for m in found] == ["sophie_chat.E020"]
    assert "nope" in found[0].msg
    assert found[0].hint


def test_e020_an_entry_that_is_not_a_tool():
    found = messages(DEBUG=True, SOPHIE_CHAT=tools("not_a_tool"))
    assert [m.id for m in found] == ["sophie_chat.E020"]
    assert "@tool" in found[0].msg


def test_e021_two_tools_with_one_name(settings):
    found = messages(DEBUG=True, SOPHIE_CHAT=tools("add", "tests.support.tool_checks.add"))
    assert [m.id for m in found] == ["sophie_chat.E021"]
    assert "'add'" in found[0].msg


def test_e021_a_name_the_model_api_refuses():
    assert ids(DEBUG=True, SOPHIE_CHAT=tools("tests.support.tool_checks.badly_named")) == [
        "sophie_chat.E021"
    ]


def test_e022_an_unknown_permission():
    found = messages(DEBUG=True, SOPHIE_CHAT=tools("tests.support.tool_checks.unknown_permission"))
    assert [m.id for m in found] == ["sophie_chat.E022"]
    assert "bookings.change_booking" in found[0].msg


def test_e023_a_type_pydantic_cannot_map():
    found = messages(DEBUG=True, SOPHIE_CHAT=tools("tests.support.tool_checks.opaque_argument"))
    assert [m.id for m in found] == ["sophie_chat.E023"]
    assert "value" in found[0].msg or "Opaque" in found[0].msg


def test_e024_a_summary_naming_an_unknown_argument():
    found = messages(DEBUG=True, SOPHIE_CHAT=tools("tests.support.tool_checks.bad_summary"))
    assert [m.id for m in found] == ["sophie_chat.E024"]
    assert "booking" in found[0].msg


def test_e024_allowed_not_callable():
    assert ids(DEBUG=True, SOPHIE_CHAT=tools("tests.support.tool_checks.allowed_not_callable")) == [
        "sophie_chat.E024"
    ]


def test_w020_tools_with_a_backend_that_cannot_call_them():
    settings = tools("add", LLM={"BACKEND": "sophie_chat.llm.offline.OfflineBackend"})
    assert ids(DEBUG=True, SOPHIE_CHAT=settings) == ["sophie_chat.W020"]


def test_w021_a_tool_without_description():
    assert ids(DEBUG=True, SOPHIE_CHAT=tools("tests.support.tool_checks.undescribed")) == [
        "sophie_chat.W021"
    ]


def test_w022_a_confirmed_tool_without_summary():
    assert ids(DEBUG=True, SOPHIE_CHAT=tools("tests.support.tool_checks.unsummarised")) == [
        "sophie_chat.W022"
    ]
