"""HTTP routes: ``path("chat/", include("sophie_chat.urls"))``."""

from django.urls import path

from sophie_chat import views

app_name = "sophie_chat"

urlpatterns = [
    path("health/", views.health, name="health"),
]
