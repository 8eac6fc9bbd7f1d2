from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SophieChatConfig(AppConfig):
    name = "sophie_chat"
    verbose_name = _("Sophie chat")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks, and the receiver that deletes what a
        # deleted user's conversations take with them.
        from sophie_chat import checks, data_rights, offers  # noqa: F401
        from sophie_chat.handoff.offer import offer_a_person
        from sophie_chat.knowledge.database import connect_signals
        from sophie_chat.tools.leads import offer_lead_capture

        # Offers leaving contact details when Sophie cannot answer, while
        # capture_lead is configured (it checks at each offer).
        offers.provider(offer_lead_capture)
        # Offers a person while handoff is on and the team is in (it checks at each offer).
        offers.provider(offer_a_person)
        # Remembered knowledge versions are forgotten when an entry changes here.
        connect_signals()
