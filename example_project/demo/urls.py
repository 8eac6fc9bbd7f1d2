from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path

from demo import views
from demo.content import HELP_TOPICS

urlpatterns = [
    path("", views.home, name="home"),
    path("services/", views.services, name="services"),
    path("services/<slug:slug>/", views.service, name="service"),
    path("help/", views.help_center, name="help"),
    # The help pages the knowledge base's entries link to (their `url`).
    *(path(url.lstrip("/"), views.topic) for url in HELP_TOPICS),
    path("login/", views.DemoLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("account/", views.account, name="account"),
    path("admin/", admin.site.urls),
    path("chat/", include("sophie_chat.urls")),
    # set_language: the language switch in the page header posts here.
    path("i18n/", include("django.conf.urls.i18n")),
]
