"""HTTP routes: ``path("chat/", include("sophie_chat.urls"))``."""

from django.urls import path

from sophie_chat import dashboard, views
from sophie_chat.inbox import views as inbox

app_name = "sophie_chat"

urlpatterns = [
    path("health/", views.health, name="health"),
    path("metrics/", views.metrics, name="metrics"),
    path("analytics/", dashboard.dashboard, name="analytics"),
    path("analytics/export.csv", dashboard.dashboard_csv, name="analytics_csv"),
    path("inbox/", inbox.inbox, name="inbox"),
]
