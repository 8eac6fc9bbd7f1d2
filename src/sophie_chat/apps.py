from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SophieChatConfig(AppConfig):
    name = "sophie_chat"
    verbose_name = _("Sophie chat")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks, and the receiver that deletes what a
        # deleted user's conversations take with them.
        from sophie_chat import checks, data_rights  # noqa: F401
