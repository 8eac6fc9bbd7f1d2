from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PgVectorConfig(AppConfig):
    name = "sophie_chat.contrib.pgvector"
    label = "sophie_chat_pgvector"
    verbose_name = _("Sophie chat: semantic search")
    default_auto_field = "django.db.models.BigAutoField"
