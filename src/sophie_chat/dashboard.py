"""The analytics dashboard at ``chat/analytics/``, and its CSV export.

For staff with the "Can view conversation analytics" permission
(``sophie_chat.view_chatanalytics``; superusers have it): anonymous visitors
are sent to the admin's login page, anyone else gets 403. The page extends
the admin's ``admin/base_site.html``; its charts are SVG drawn on the server
(:mod:`sophie_chat.charts`), so it needs no script.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from functools import wraps
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sophie_chat import analytics, charts
from sophie_chat.analytics import DayFigures, Summary

PERMISSION = "sophie_chat.view_chatanalytics"
DEFAULT_DAYS = 30
PRESETS = (7, 30, 90)
#: The longest period one page shows.
MAX_DAYS = 400


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff with :data:`PERMISSION` only: login page for anonymous visitors, 403 for others."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), _login_url())
        if not (user.is_active and user.is_staff and user.has_perm(PERMISSION)):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def _login_url() -> str | None:
    try:
        return reverse("admin:login")
    except NoReverseMatch:
        return None  # settings.LOGIN_URL


def _admin_url(name: str, *args: Any) -> str | None:
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None


class PeriodForm(forms.Form):
    start = forms.DateField(
        label=gettext_lazy("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    end = forms.DateField(
        label=gettext_lazy("To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    days = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_DAYS, widget=forms.HiddenInput
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        today = timezone.localdate()
        if data.get("days") and not (data.get("start") or data.get("end")):
            data["end"] = today
            data["start"] = today - timedelta(days=data["days"] - 1)
        end = data.get("end") or today
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError(_("The period must start before it ends."))
        if (end - start).days + 1 > MAX_DAYS:
            raise forms.ValidationError(
                _("Choose a period of at most %(days)d days.") % {"days": MAX_DAYS}
            )
        data["start"], data["end"] = start, end
        return data


def period(request: HttpRequest) -> tuple[PeriodForm, date, date]:
    """The period asked for in the query string (the last 30 days by default)."""
    form = PeriodForm(request.GET or None)
    if form.is_bound and form.is_valid():
        return form, form.cleaned_data["start"], form.cleaned_data["end"]
    end = timezone.localdate()
    return form, end - timedelta(days=DEFAULT_DAYS - 1), end


# -- formatting ---------------------------------------------------------------------


def _int(value: int) -> str:
    return number_format(value, decimal_pos=0, use_l10n=True, force_grouping=True)


def _ms(value: int | None) -> str:
    if value is None:
        return "—"
    if value >= 1000:
        return f"{number_format(value / 1000, decimal_pos=2, use_l10n=True)} s"
    return f"{_int(value)} ms"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{number_format(value * 100, decimal_pos=1, use_l10n=True)} %"


def _money(value: Decimal | None, currency: str) -> str:
    if value is None:
        return "—"
    places = 2 if value >= 1 else 4
    return (
        f"{number_format(value, decimal_pos=places, use_l10n=True, force_grouping=True)} {currency}"
    )


def day_cost(day: DayFigures) -> Decimal | None:
    """A day's estimated cost at today's prices (None when no model of it has a price)."""
    costs = [
        analytics.cost_of(model, u.get("prompt_tokens", 0), u.get("completion_tokens", 0))
        for model, u in day.usage.items()
    ]
    priced = [c for c in costs if c is not None]
    return sum(priced, Decimal(0)) if priced else None


def _kpi(label: str, value: str, detail: str) -> dict[str, str]:
    return {"label": label, "value": value, "detail": detail}


def _kpis(summary: Summary) -> list[dict[str, str]]:
    t = summary.totals
    approx = "≈ " if t.first_token.estimated else ""
    satisfaction = (
        "—"
        if t.satisfaction is None
        else f"{number_format(t.satisfaction, decimal_pos=1, use_l10n=True)} / 5"
    )
    return [
        _kpi(
            _("Conversations"),
            _int(t.conversations),
            _("%(messages)s messages from visitors") % {"messages": _int(t.user_messages)},
        ),
        _kpi(
            _("Answers"),
            _int(t.answers),
            _("%(rate)s from the cache") % {"rate": _rate(t.cache_hit_rate)},
        ),
        _kpi(
            _("Fallback answers"),
            _int(t.fallbacks),
            _("%(failures)s failed model calls")
            % {"failures": _int(sum(t.model_failures.values()))},
        ),
        _kpi(
            _("Errors sent"),
            _int(t.errors),
            _("%(limited)s rate-limit refusals") % {"limited": _int(t.rate_limited)},
        ),
        _kpi(
            _("Time to first token"),
            f"{approx}{_ms(t.first_token.p50)}",
            _("p50; p95 %(p95)s") % {"p95": _ms(t.first_token.p95)},
        ),
        _kpi(
            _("Total answer time"),
            f"{approx}{_ms(t.total.p50)}",
            _("p50; p95 %(p95)s") % {"p95": _ms(t.total.p95)},
        ),
        _kpi(
            _("Tokens"),
            _int(t.prompt_tokens + t.completion_tokens),
            _("%(input)s in, %(output)s out")
            % {"input": _int(t.prompt_tokens), "output": _int(t.completion_tokens)},
        ),
        _kpi(
            _("Estimated cost"),
            _money(summary.cost, summary.currency),
            _("at the prices in MODEL_PRICES"),
        ),
        _kpi(
            _("Helpful answers"),
            _rate(t.thumbs_up_rate),
            _("%(up)s helpful, %(down)s not, of %(rated)s rated")
            % {
                "up": _int(t.thumbs_up),
                "down": _int(t.thumbs_down),
                "rated": _int(t.thumbs_up + t.thumbs_down),
            },
        ),
        _kpi(
            _("Satisfaction"),
            satisfaction,
            ngettext(
                "%(count)s conversation rated",
                "%(count)s conversations rated",
                t.rated_conversations or 0,
            )
            % {"count": _int(t.rated_conversations)},
        ),
        _kpi(
            _("Unanswered questions"),
            _int(summary.unanswered),
            _("open, last asked in this period"),
        ),
    ]


def _charts(summary: Summary) -> list[dict[str, Any]]:
    labels = [date_format(day.day, "j M") for day in summary.days]

    def values(get: Callable[[DayFigures], float | None]) -> tuple[float | None, ...]:
        return tuple(get(day) for day in summary.days)

    conversations = charts.bar_chart(
        labels,
        [charts.Series(_("Conversations"), values(lambda d: d.conversations), "sc-s1")],
        title=_("Conversations per day"),
    )
    answers = charts.bar_chart(
        labels,
        [
            charts.Series(
                _("Model"), values(lambda d: d.answers - d.cache_hits - d.fallbacks), "sc-s1"
            ),
            charts.Series(_("Cache"), values(lambda d: d.cache_hits), "sc-s2"),
            charts.Series(_("Fallback"), values(lambda d: d.fallbacks), "sc-s3"),
        ],
        title=_("Answers per day, by source"),
    )
    latency = charts.line_chart(
        labels,
        [
            charts.Series(_("First token p50"), values(lambda d: d.first_token.p50), "sc-s1"),
            charts.Series(_("First token p95"), values(lambda d: d.first_token.p95), "sc-s2"),
            charts.Series(_("Total p95"), values(lambda d: d.total.p95), "sc-s3"),
        ],
        title=_("Answer times per day (ms)"),
        unit="ms",
    )
    feedback = charts.bar_chart(
        labels,
        [
            charts.Series(_("Helpful"), values(lambda d: d.thumbs_up), "sc-s2"),
            charts.Series(_("Not helpful"), values(lambda d: d.thumbs_down), "sc-s4"),
            charts.Series(_("Errors sent"), values(lambda d: d.errors), "sc-s3"),
        ],
        title=_("Ratings and errors per day"),
    )
    return [
        {"title": _("Conversations per day"), "svg": conversations},
        {"title": _("Answers per day, by source"), "svg": answers},
        {"title": _("Answer times per day"), "svg": latency},
        {"title": _("Ratings and errors per day"), "svg": feedback},
    ]


# -- views ----------------------------------------------------------------------------


@never_cache
@require_GET
@staff_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The figures of a period, charts, top questions and down-rated answers."""
    form, start, end = period(request)
    summary = analytics.summarize(start, end)
    worst = [
        {"answer": answer, "url": _admin_url("sophie_chat_chatsession_change", answer.session_id)}
        for answer in analytics.worst_rated_answers(start, end)
    ]
    unanswered = [
        {"item": item, "url": _admin_url("sophie_chat_unansweredquestion_change", item.pk)}
        for item in analytics.unanswered_questions(start, end)
    ]
    query = f"start={start.isoformat()}&end={end.isoformat()}"
    context = {
        **admin.site.each_context(request),
        "title": _("Chat analytics"),
        "form": form,
        "start": start,
        "end": end,
        "presets": [
            {"days": days, "label": _("Last %(days)d days") % {"days": days}} for days in PRESETS
        ],
        "summary": summary,
        "kpis": _kpis(summary),
        "charts": _charts(summary),
        "usage": [
            {"usage": usage, "cost": _money(usage.cost, summary.currency)}
            for usage in summary.usage
        ],
        "errors_by_code": sorted(summary.totals.errors_by_code.items(), key=lambda i: -i[1]),
        "model_failures": sorted(summary.totals.model_failures.items(), key=lambda i: -i[1]),
        "top_questions": analytics.top_questions(start, end),
        "tools": analytics.tool_usage(start, end),
        "tool_calls_url": _admin_url("sophie_chat_toolcall_changelist"),
        "handoffs": analytics.handoff_figures(start, end),
        "handoffs_url": _admin_url("sophie_chat_handoff_changelist"),
        "worst_rated": worst,
        "unanswered": unanswered,
        "csv_url": f"{reverse('sophie_chat:analytics_csv')}?{query}",
        "conversations_url": _admin_url("sophie_chat_chatsession_changelist"),
        "unanswered_url": _admin_url("sophie_chat_unansweredquestion_changelist"),
    }
    return render(request, "sophie_chat/analytics/dashboard.html", context)


CSV_COLUMNS = (
    "day", "conversations", "user_messages", "answers", "cache_hits", "fallbacks",
    "interrupted", "failed", "model_failures", "errors", "rate_limited", "thumbs_up",
    "thumbs_down", "satisfaction_avg", "prompt_tokens", "completion_tokens", "estimated_cost",
    "first_token_p50_ms", "first_token_p95_ms", "total_p50_ms", "total_p95_ms",
)  # fmt: skip


def _csv_row(label: str, day: DayFigures, cost: Decimal | None) -> list[Any]:
    satisfaction = day.satisfaction
    return [
        label, day.conversations, day.user_messages, day.answers, day.cache_hits,
        day.fallbacks, day.interrupted, day.failed, sum(day.model_failures.values()),
        day.errors, day.rate_limited, day.thumbs_up, day.thumbs_down,
        "" if satisfaction is None else f"{satisfaction:.2f}",
        day.prompt_tokens, day.completion_tokens, "" if cost is None else f"{cost:.6f}",
        day.first_token.p50 or "", day.first_token.p95 or "",
        day.total.p50 or "", day.total.p95 or "",
    ]  # fmt: skip


@never_cache
@require_GET
@staff_required
def dashboard_csv(request: HttpRequest) -> HttpResponse:
    """The period's figures per day as CSV (and a last ``total`` row); machine-readable headers."""
    _form, start, end = period(request)
    summary = analytics.summarize(start, end)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="sophie-chat-analytics-{start.isoformat()}-{end.isoformat()}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for day in summary.days:
        writer.writerow(_csv_row(day.day.isoformat(), day, day_cost(day)))
    writer.writerow(_csv_row("total", summary.totals, summary.cost))
    return response
