"""HTTP routes of the benchmark project: Sophie's health view (the runner polls it)."""

from django.urls import include, path

urlpatterns = [path("chat/", include("sophie_chat.urls"))]
