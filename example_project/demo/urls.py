from django.contrib import admin
from django.urls import include, path

from demo import views

urlpatterns = [
    path("", views.home, name="home"),
    path("services/<slug:slug>/", views.service, name="service"),
    path("admin/", admin.site.urls),
    path("chat/", include("sophie_chat.urls")),
    # set_language: the language switch in the page header posts here.
    path("i18n/", include("django.conf.urls.i18n")),
]
