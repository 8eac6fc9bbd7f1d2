"""The Casa Pronta demo's tools (example_project/demo/tools.py), run inside the demo.

Each scenario runs in the demo's own ``manage.py shell`` on a copy of a
migrated demo database, calling the tools the way the engine does
(``allows``, ``validate``, ``run`` with a visitor's ``ToolContext``): who
may use which tool, ownership of bookings, the cancellation policy. The
confirmation flow itself, through a model and the widget, is in
tests/browser/test_tools.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.demo import demo_env, make_template_database, manage

pytestmark = pytest.mark.server

# Run inside the demo: each visitor's view of the tools, and what calls did.
SCENARIOS = """
import asyncio, datetime, json
from decimal import Decimal
from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone
from demo import tools
from demo.models import Booking
from sophie_chat.tools import ToolContext, ToolError

def context(user, locale="en"):
    user = user or AnonymousUser()
    return ToolContext(user=user, user_id=user.pk, session_id="", locale=locale)

def call(tool, user, arguments, locale="en"):
    try:
        values = tool.validate(json.dumps(arguments))
        return {"ok": asyncio.run(tool.run(values, context(user, locale)))}
    except ToolError as error:
        return {"error": str(error)}

ana, carlos = User.objects.get(username="ana"), User.objects.get(username="carlos")
names = ["search_services", "my_bookings", "reschedule_booking", "cancel_booking"]
visitors = {"anonymous": None, "ana": ana, "carlos": carlos}
allowed = {
    who: [n for n in names if asyncio.run(getattr(tools, n).allows(context(user)))]
    for who, user in visitors.items()
}
first, second, third = Booking.objects.filter(client=ana).order_by("starts_at")
ana_bookings = call(tools.my_bookings, ana, {})
soon = Booking.objects.create(
    client=ana, service="Furniture assembly", price=Decimal("100"),
    starts_at=timezone.now() + datetime.timedelta(hours=5),
)
friday = (timezone.localtime() + datetime.timedelta(days=9)).replace(
    hour=9, minute=0, second=0, microsecond=0, tzinfo=None
).isoformat()
out = {
    "allowed": allowed,
    "search_en": call(tools.search_services, None, {"query": "paint"}),
    "search_pt": call(tools.search_services, None, {"query": "pintura"}, "pt-br"),
    "ana_bookings": ana_bookings,
    "carlos_bookings": call(tools.my_bookings, carlos, {}),
    "carlos_cancels_anas": call(tools.cancel_booking, carlos, {"booking_id": first.pk}),
    "carlos_moves_anas": call(
        tools.reschedule_booking, carlos, {"booking_id": first.pk, "new_start": friday}
    ),
    "made_up_booking": call(tools.cancel_booking, ana, {"booking_id": 999999}),
    "move_to_the_past": call(
        tools.reschedule_booking, ana, {"booking_id": second.pk, "new_start": "2001-01-01T09:00"}
    ),
    "move_to_the_night": call(
        tools.reschedule_booking, ana,
        {"booking_id": second.pk, "new_start": friday.replace("T09", "T23")},
    ),
    "move": call(tools.reschedule_booking, ana, {"booking_id": second.pk, "new_start": friday}),
    "cancel_early": call(tools.cancel_booking, ana, {"booking_id": third.pk}),
    "cancel_late": call(tools.cancel_booking, ana, {"booking_id": soon.pk}),
    "cancel_again": call(tools.cancel_booking, ana, {"booking_id": soon.pk}),
    "friday": friday,
    "ids": [first.pk, second.pk, third.pk, soon.pk],
    "statuses": {
        b.pk: [b.status, timezone.localtime(b.starts_at).isoformat(timespec="minutes")]
        for b in Booking.objects.all()
    },
}
from django.utils import translation
with translation.override("pt-br"):
    out["pt_br"] = {
        "summary": tools.cancel_booking.summary_text({"booking_id": 7}),
        "label": str(tools.my_bookings.label),
    }
print(json.dumps(out, default=str))
"""

SETTINGS_PROBE = """
import json
from sophie_chat import conf
print(json.dumps({"tools": conf.get("TOOLS"), "leads": conf.get("LEADS")}))
"""


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template_database(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def scenarios(demo_database: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    database = tmp_path_factory.mktemp("demo-tools") / "db.sqlite3"
    shutil.copyfile(demo_database, database)
    out = manage(demo_env(database), "shell", "--no-imports", "-c", SCENARIOS)
    return json.loads(out.strip().splitlines()[-1])


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_offline_the_demo_lists_no_tools(demo_database):
    assert (
        last_json(manage(demo_env(demo_database), "shell", "--no-imports", "-c", SETTINGS_PROBE))[
            "tools"
        ]
        == []
    )


def test_with_a_model_the_demo_lists_its_tools_and_lead_capture_and_passes_the_checks(
    demo_database,
):
    env = {**demo_env(demo_database), "OPENAI_API_KEY": "sk-demo"}

    probe = last_json(manage(env, "shell", "--no-imports", "-c", SETTINGS_PROBE))

    assert probe["tools"] == [
        "demo.tools.search_services",
        "demo.tools.my_bookings",
        "demo.tools.reschedule_booking",
        "demo.tools.cancel_booking",
        "sophie_chat.tools.leads.capture_lead",
    ]
    assert probe["leads"]["REQUIRED"] == ["service", "neighbourhood", "name"]
    assert "System check identified no issues" in manage(env, "check")


def test_who_may_use_which_tool(scenarios):
    assert scenarios["allowed"] == {
        "anonymous": ["search_services"],
        "ana": ["search_services", "my_bookings", "reschedule_booking", "cancel_booking"],
        "carlos": ["search_services", "my_bookings", "reschedule_booking", "cancel_booking"],
    }


def test_search_services_gives_prices_in_the_visitors_language(scenarios):
    (painting,) = scenarios["search_en"]["ok"]
    assert painting == {
        "service": "Painting",
        "description": "Walls, ceilings, doors and small touch-ups, inside and out.",
        "price_from": "R$ 250.00",
        "page": "/services/painting/",
    }
    assert [s["service"] for s in scenarios["search_pt"]["ok"]] == ["Pintura"]


def test_my_bookings_lists_only_the_visitors_own(scenarios):
    services = [booking["service"] for booking in scenarios["ana_bookings"]["ok"]]
    assert services == ["Deep cleaning", "Electrical repair: shower", "Plumbing: kitchen tap"]
    assert scenarios["ana_bookings"]["ok"][0]["price"] == "R$ 320.00"
    assert scenarios["carlos_bookings"]["ok"] == []


def test_another_clients_booking_is_not_found_and_stays_as_it_was(scenarios):
    first = scenarios["ids"][0]
    assert "no upcoming booking" in scenarios["carlos_cancels_anas"]["error"]
    assert "no upcoming booking" in scenarios["carlos_moves_anas"]["error"]
    assert "no upcoming booking" in scenarios["made_up_booking"]["error"]
    assert scenarios["statuses"][str(first)][0] == "confirmed"


def test_reschedule_moves_the_booking_within_the_rules(scenarios):
    second = scenarios["ids"][1]
    assert "more than 24 hours from now" in scenarios["move_to_the_past"]["error"]
    assert "between 07:00 and 20:00" in scenarios["move_to_the_night"]["error"]
    assert scenarios["move"]["ok"]["starts_at"].startswith(scenarios["friday"][:16])
    assert scenarios["statuses"][str(second)][1].startswith(scenarios["friday"][:16])


def test_cancel_applies_the_cancellation_policy(scenarios):
    third, soon = scenarios["ids"][2], scenarios["ids"][3]
    assert scenarios["cancel_early"]["ok"] == {"id": third, "cancelled": True, "fee": "R$ 0.00"}
    # Less than 24 hours before the visit: 30% of R$ 100.
    assert scenarios["cancel_late"]["ok"] == {"id": soon, "cancelled": True, "fee": "R$ 30.00"}
    assert "no upcoming booking" in scenarios["cancel_again"]["error"]
    assert scenarios["statuses"][str(third)][0] == "cancelled"


def test_the_tools_speak_portuguese_to_a_portuguese_visitor(scenarios):
    assert scenarios["pt_br"] == {
        "summary": "Cancelar o agendamento 7. Grátis até 24 horas antes da visita; "
        "depois, taxa de 30% do valor.",
        "label": "Consultando os seus agendamentos…",
    }
