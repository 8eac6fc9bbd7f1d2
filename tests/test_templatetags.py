"""The ``{% sophie_chat_widget %}`` tag: CSP-safe markup, escaping, nonce, locale."""

import json
from html.parser import HTMLParser
from pathlib import Path

import django
import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory, override_settings
from django.utils import translation
from django.utils.safestring import mark_safe

import sophie_chat

PT_BR_CATALOG = Path(sophie_chat.__file__).parent / "locale/pt_BR/LC_MESSAGES/django.mo"


def test_pt_br_catalog_is_compiled_and_shipped():
    assert PT_BR_CATALOG.exists(), "run compilemessages in src/sophie_chat and commit the .mo"


class Markup(HTMLParser):
    """Every start tag as (tag, attrs dict), and the text inside each <script>."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.script_text.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.script_text[-1] += data

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def one(self, tag: str) -> dict[str, str | None]:
        (attrs,) = self.all(tag)
        return attrs


def render(arguments: str = "", request=None, **context) -> str:
    template = Template("{% load sophie_chat %}{% sophie_chat_widget " + arguments + " %}")
    if request is None:
        request = RequestFactory().get("/")
    return template.render(Context({"request": request, **context}))


def widget(html: str) -> dict[str, str | None]:
    return Markup(html).one("sophie-chat")


def strings(html: str) -> dict[str, str]:
    markup = Markup(html)
    element = markup.one("sophie-chat")
    for attrs, text in zip(markup.all("script"), markup.script_text, strict=True):
        if attrs.get("id") == element["data-strings-id"]:
            return json.loads(text)
    raise AssertionError("no strings block")


# --- Content-Security-Policy ---------------------------------------------------


def test_every_script_is_external_or_inert_json():
    markup = Markup(render())
    scripts = markup.all("script")
    assert scripts
    for attrs, text in zip(scripts, markup.script_text, strict=True):
        if attrs.get("type") == "application/json":
            continue
        assert attrs.get("src"), "inline script"
        assert not text.strip()


def test_widget_script_is_a_module_from_static():
    (script,) = [s for s in Markup(render()).all("script") if s.get("src")]
    assert script["type"] == "module"
    assert script["src"] == "/static/sophie_chat/widget.js"


def test_markup_has_no_inline_styles_or_event_handlers():
    html = render('theme="dark" position="bottom-left" open=True')
    markup = Markup(html)
    assert not markup.all("style")
    for _tag, attrs in markup.tags:
        assert "style" not in attrs
        assert not [name for name in attrs if name.startswith("on")]


def test_stylesheet_url_is_passed_to_the_widget():
    assert widget(render())["data-stylesheet"] == "/static/sophie_chat/widget.css"
    assert not Markup(render()).all("link")


def test_nonce_from_request_csp_nonce_is_on_the_script():
    request = RequestFactory().get("/")
    request.csp_nonce = "abc123"
    (script,) = [s for s in Markup(render(request=request)).all("script") if s.get("src")]
    assert script["nonce"] == "abc123"


def test_nonce_from_csp_nonce_context_variable_is_on_the_script():
    (script,) = [s for s in Markup(render(csp_nonce="ctx-nonce")).all("script") if s.get("src")]
    assert script["nonce"] == "ctx-nonce"


# Django 6.0 added a CSP middleware; on 5.2 there is nothing of Django's to test.
if django.VERSION >= (6, 0):

    def test_nonce_from_django_csp_middleware_matches_the_header():
        from django.http import HttpResponse
        from django.middleware.csp import ContentSecurityPolicyMiddleware
        from django.utils import csp

        holder = {}

        def view(request):
            holder["html"] = render(request=request)
            return HttpResponse(holder["html"])

        policy = {"script-src": [csp.CSP.SELF, csp.CSP.NONCE], "style-src": [csp.CSP.SELF]}
        with override_settings(SECURE_CSP=policy):
            response = ContentSecurityPolicyMiddleware(view)(RequestFactory().get("/"))
        (script,) = [s for s in Markup(holder["html"]).all("script") if s.get("src")]
        assert script["nonce"]
        assert f"'nonce-{script['nonce']}'" in response["Content-Security-Policy"]


def test_no_nonce_attribute_without_csp():
    for attrs in Markup(render()).all("script"):
        assert "nonce" not in attrs


def test_json_strings_block_carries_no_nonce():
    request = RequestFactory().get("/")
    request.csp_nonce = "abc123"
    (block,) = [s for s in Markup(render(request=request)).all("script") if not s.get("src")]
    assert "nonce" not in block


# --- escaping --------------------------------------------------------------------


def test_greeting_with_markup_is_escaped_in_its_attribute():
    evil = '"><script>alert(1)</script>'
    html = render("greeting=evil", evil=evil)
    assert "<script>alert" not in html
    assert widget(html)["data-greeting"] == evil


def test_template_string_literal_is_escaped_too():
    # Django marks template literals safe; the tag must still escape them.
    html = render("greeting='\"><b>hi</b>'")
    assert "<b>" not in html
    assert widget(html)["data-greeting"] == '"><b>hi</b>'


def test_values_marked_safe_are_still_escaped():
    html = render("name=name", name=mark_safe('Sophie"><img src=x>'))
    assert "<img" not in html
    assert widget(html)["data-name"] == 'Sophie"><img src=x>'


def test_name_cannot_close_the_strings_block():
    html = render("name=name", name="</script><script>alert(1)</script>")
    assert "</script><script>alert" not in html
    assert strings(html)["dialog"] == "Chat with </script><script>alert(1)</script>"


def test_output_is_escaped_inside_autoescape_off():
    template = Template(
        "{% load sophie_chat %}{% autoescape off %}"
        "{% sophie_chat_widget greeting=evil %}{% endautoescape %}"
    )
    html = template.render(Context({"request": RequestFactory().get("/"), "evil": '"><i>x'}))
    assert "<i>" not in html


# --- options -----------------------------------------------------------------------


def test_defaults():
    attrs = widget(render())
    assert attrs["data-ws-path"] == "/ws/chat/"
    assert attrs["data-theme"] == "auto"
    assert attrs["data-position"] == "bottom-right"
    assert attrs["data-name"] == "Sophie"
    assert "data-avatar-url" not in attrs
    assert "data-open" not in attrs


def test_options_become_data_attributes():
    attrs = widget(
        render(
            'ws_path="/custom/ws/" theme="dark" position="bottom-left" '
            'name="Ana" avatar_url="/static/ana.png" open=True'
        )
    )
    assert attrs["data-ws-path"] == "/custom/ws/"
    assert attrs["data-theme"] == "dark"
    assert attrs["data-position"] == "bottom-left"
    assert attrs["data-name"] == "Ana"
    assert attrs["data-avatar-url"] == "/static/ana.png"
    assert attrs["data-open"] == "true"


def test_open_false_string_starts_closed():
    assert "data-open" not in widget(render('open="false"'))


@override_settings(
    SOPHIE_CHAT={"ASSISTANT_NAME": "Bia", "ASSISTANT_AVATAR_URL": "https://cdn.example/bia.png"}
)
def test_name_and_avatar_default_to_settings():
    attrs = widget(render())
    assert attrs["data-name"] == "Bia"
    assert attrs["data-avatar-url"] == "https://cdn.example/bia.png"
    assert strings(render())["open"] == "Chat with Bia"


def test_invalid_theme_is_a_template_error():
    with pytest.raises(TemplateSyntaxError, match="theme"):
        render('theme="neon"')


def test_invalid_position_is_a_template_error():
    with pytest.raises(TemplateSyntaxError, match="position"):
        render('position="top-left"')


def test_unknown_option_is_a_template_error():
    with pytest.raises(TemplateSyntaxError):
        render('colour="red"')


def test_two_widgets_on_one_page_get_distinct_strings_ids():
    request = RequestFactory().get("/")
    first = widget(render(request=request))["data-strings-id"]
    second = widget(render(request=request))["data-strings-id"]
    assert first != second


def test_renders_without_a_request_in_the_context():
    html = Template("{% load sophie_chat %}{% sophie_chat_widget %}").render(Context())
    assert widget(html)["data-strings-id"] == "sophie-chat-strings"


# --- greeting ---------------------------------------------------------------------


def test_default_greeting_is_built_in_and_names_the_assistant():
    attrs = widget(render())
    assert attrs["data-greeting"] == "Hi! I'm Sophie. How can I help you today?"
    assert "data-keep-greeting" not in attrs


@override_settings(SOPHIE_CHAT={"GREETING": "Welcome to Casa Pronta!"})
def test_greeting_setting_is_the_default_greeting():
    assert widget(render())["data-greeting"] == "Welcome to Casa Pronta!"


def test_explicit_greeting_is_kept_over_the_servers():
    attrs = widget(render('greeting="Need a plumber?"'))
    assert attrs["data-greeting"] == "Need a plumber?"
    assert attrs["data-keep-greeting"] == "true"


# --- language ----------------------------------------------------------------------


def test_locale_defaults_to_the_active_language():
    with translation.override("pt-br"):
        assert widget(render())["data-locale"] == "pt-br"


def test_explicit_locale_wins_over_the_active_language():
    with translation.override("en"):
        assert widget(render('locale="pt-br"'))["data-locale"] == "pt-br"


def test_strings_are_in_portuguese_when_the_language_is_pt_br():
    with translation.override("pt-br"):
        html = render()
    assert strings(html)["send"] == "Enviar"
    assert widget(html)["data-greeting"] != "Hi! I'm Sophie. How can I help you today?"


def test_strings_follow_an_explicit_locale():
    with translation.override("en"):
        assert strings(render('locale="pt-br"'))["send"] == "Enviar"


def test_strings_are_english_by_default():
    with translation.override("en"):
        data = strings(render())
    assert data["send"] == "Send"
    assert data["typing"] == "Sophie is typing…"
    assert "%(seconds)s" in data["retry_in"]


# --- suggestions, limits and the new strings -----------------------------------------


def test_no_suggestions_by_default():
    assert "data-suggestions" not in widget(render())


def test_suggestions_from_a_list_become_a_json_attribute():
    attrs = widget(render("suggestions=questions", questions=["Prices?", "Booking?"]))
    assert json.loads(attrs["data-suggestions"]) == ["Prices?", "Booking?"]


def test_suggestions_from_a_string_are_split_on_bars():
    attrs = widget(render("suggestions='Prices? | Booking? |  | Refunds?'"))
    assert json.loads(attrs["data-suggestions"]) == ["Prices?", "Booking?", "Refunds?"]


def test_at_most_four_suggestions_are_kept():
    questions = [f"Question {n}?" for n in range(6)]
    attrs = widget(render("suggestions=questions", questions=questions))
    assert json.loads(attrs["data-suggestions"]) == questions[:4]


def test_suggestion_markup_is_escaped():
    html = render("suggestions=questions", questions=['"><script>alert(1)</script>'])
    assert "<script>alert" not in html
    assert json.loads(widget(html)["data-suggestions"]) == ['"><script>alert(1)</script>']


def test_max_length_follows_the_setting():
    assert widget(render())["data-max-length"] == "2000"
    with override_settings(SOPHIE_CHAT={"MAX_MESSAGE_LENGTH": 500}):
        assert widget(render())["data-max-length"] == "500"


def test_feedback_rating_and_counter_strings_are_passed():
    with translation.override("en"):
        data = strings(render())
    assert (data["helpful"], data["not_helpful"]) == ("Helpful", "Not helpful")
    assert data["rate_title"] == "How was your conversation with Sophie?"
    assert "%(score)s" in data["rate_score"]
    assert "%(count)s" in data["limit_near"]
    assert "%(max)s" in data["limit_reached"]
    assert data["disclaimer"]
