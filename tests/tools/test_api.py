"""The @tool API: schema from the signature, validation, permissions, the registry."""

from __future__ import annotations

import datetime
import json

import pytest
from django.contrib.auth.models import AnonymousUser, Permission, User
from django.test import override_settings
from django.utils import translation

from sophie_chat.tools import Tool, ToolArgumentsInvalid, ToolContext, registry, tool
from tests.support import tools as sample

ALL = [
    "tests.support.tools.my_profile",
    "tests.support.tools.rename_me",
    "tests.support.tools.entry_count",
    "tests.support.tools.add",
]


def context_for(user=None, *, locale: str = "en") -> ToolContext:
    user = user or AnonymousUser()
    return ToolContext(
        user=user,
        user_id=user.pk,
        session_id="s1",
        locale=locale,
        user_type="customer" if user.is_authenticated else "anonymous",
    )


def test_the_schema_comes_from_type_hints_and_the_docstring():
    definition = sample.rename_me.definition()
    assert definition.name == "rename_me"
    assert definition.description == "Change the logged-in visitor's first name."
    assert definition.parameters["required"] == ["first_name"]
    first_name = definition.parameters["properties"]["first_name"]
    assert first_name["type"] == "string"
    assert first_name["maxLength"] == 30
    assert first_name["description"] == "The new first name."
    # The visitor is not the model's to choose.
    assert "context" not in definition.parameters["properties"]
    assert definition.parameters["additionalProperties"] is False


def test_the_openai_shape_is_a_function_tool():
    shaped = sample.add.definition().as_openai()
    assert shaped["type"] == "function"
    assert shaped["function"]["name"] == "add"
    assert set(shaped["function"]["parameters"]["properties"]) == {"a", "b"}


def test_a_decorated_function_is_still_callable():
    assert sample.add(2, 3) == 5
    assert isinstance(sample.add, Tool)


def test_arguments_are_validated_and_converted():
    assert sample.next_weekday.validate('{"day": "2026-12-06"}') == {
        "day": datetime.date(2026, 12, 6)
    }
    assert sample.add.validate({"a": "2", "b": 3}) == {"a": 2, "b": 3}


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ('{"a": 1}', "b: Field required"),
        ('{"a": 1, "b": "x"}', "b: Input should be a valid integer"),
        ('{"a": 1, "b": 2, "c": 3}', "c: Extra inputs are not permitted"),
        ("{not json", "Invalid JSON"),
    ],
)
def test_invalid_arguments_say_what_is_wrong_for_the_model(arguments, said):
    with pytest.raises(ToolArgumentsInvalid) as raised:
        sample.add.validate(arguments)
    assert said in str(raised.value)


def test_the_summary_is_formatted_in_the_visitors_language():
    with translation.override("en"):
        assert sample.rename_me.summary_text({"first_name": "Ana"}) == (
            "Change your first name to Ana"
        )


def test_dates_and_numbers_in_a_summary_read_as_in_the_visitors_language():
    @tool(confirm=True, summary="Move booking {booking} to {day}")
    def move(booking: int, day: datetime.date) -> str:
        """Move."""
        return "ok"

    arguments = {"booking": 12345, "day": datetime.date(2026, 12, 18)}
    with translation.override("en"):
        assert move.summary_text(arguments) == "Move booking 12345 to Dec. 18, 2026"
    with translation.override("pt-br"):
        assert move.summary_text(arguments) == "Move booking 12345 to 18 de Dezembro de 2026"


def test_a_tool_without_summary_is_summarised_by_its_name():
    assert sample.add.summary_text({"a": 1, "b": 2}) == "add"


def test_redacted_arguments_are_not_stored():
    assert sample.rename_me.redacted({"first_name": "Ana"}) == {"first_name": "[redacted]"}
    assert sample.next_weekday.redacted({"day": datetime.date(2026, 1, 2)}) == {"day": "2026-01-02"}


def test_a_bare_decorator_and_options_both_make_tools():
    @tool
    def plain() -> str:
        """Plain."""
        return "x"

    @tool(name="renamed", description="Described.")
    def other() -> str:
        return "y"

    assert plain.name == "plain"
    assert (other.name, other.description) == ("renamed", "Described.")


def test_a_type_pydantic_cannot_map_is_kept_as_a_schema_error():
    class Opaque:
        pass

    @tool
    def strange(value: Opaque) -> str:
        """Strange."""
        return ""

    assert strange.schema_error is not None


@pytest.mark.django_db(transaction=True)
async def test_run_passes_the_context_and_runs_sync_functions_in_a_thread():
    context = context_for()
    assert await sample.add.run({"a": 1, "b": 2}, context) == 3
    assert await sample.next_weekday.run({"day": datetime.date(2026, 12, 6)}, context) == "Monday"


# Permissions -----------------------------------------------------------------------------


@pytest.fixture
def people(db):
    owner = User.objects.create_user("owner", password="x")
    other = User.objects.create_user("other", password="x")
    staff = User.objects.create_user("staff", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="change_knowledgebaseentry"))
    staff = User.objects.get(pk=staff.pk)  # permissions are cached per instance
    return {"anonymous": AnonymousUser(), "owner": owner, "other": other, "staff": staff}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("anonymous", ["add"]),
        ("owner", ["my_profile", "rename_me", "add"]),
        ("other", ["my_profile", "rename_me", "add"]),
        ("staff", ["my_profile", "rename_me", "entry_count", "add"]),
    ],
)
async def test_offered_tools_follow_login_and_permissions(people, who, expected):
    with override_settings(SOPHIE_CHAT={"TOOLS": ALL}):
        offered = await registry.offered(context_for(people[who]))
    assert [found.name for found in offered] == expected


@pytest.mark.django_db(transaction=True)
async def test_allowed_decides_with_the_context():
    assert await sample.portuguese_only.allows(context_for(locale="pt-br"))
    assert not await sample.portuguese_only.allows(context_for(locale="en"))


@pytest.mark.django_db(transaction=True)
async def test_an_allowed_that_raises_refuses():
    def explode(context):
        raise RuntimeError("no")

    @tool(allowed=explode)
    def guarded() -> str:
        """Guarded."""
        return ""

    assert not await guarded.allows(context_for())


def test_the_registry_loads_tools_by_name_and_forgets_them_on_change():
    with override_settings(SOPHIE_CHAT={"TOOLS": ["tests.support.tools.add"]}):
        assert list(registry.tools()) == ["add"]
        assert registry.get("add") is sample.add
        assert registry.get("my_profile") is None
    with override_settings(SOPHIE_CHAT={"TOOLS": []}):
        assert registry.tools() == {}


def test_the_registry_refuses_a_plain_function():
    with (
        override_settings(SOPHIE_CHAT={"TOOLS": ["tests.support.tools.not_a_tool"]}),
        pytest.raises(registry.InvalidToolError),
    ):
        registry.tools()


def test_json_schema_is_serialisable():
    for path in ALL:
        found = registry._load(path)
        assert isinstance(found, Tool)
        json.dumps(found.definition().as_openai())
