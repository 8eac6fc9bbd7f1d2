from django.db import models
from django.utils.translation import gettext_lazy as _

from sophie_chat.contrib.pgvector.fields import VectorField
from sophie_chat.models import KnowledgeBaseEntry


class KnowledgeEmbedding(models.Model):
    """The embedding of one knowledge entry by one embedder.

    Kept up to date by :class:`~sophie_chat.contrib.pgvector.knowledge.PgVectorKnowledgeSource`
    whenever the knowledge base changes: ``content_hash`` tells which entries
    changed since they were embedded.
    """

    entry = models.ForeignKey(
        KnowledgeBaseEntry,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("knowledge base entry"),
    )
    embedder = models.CharField(_("embedder"), max_length=200)
    content_hash = models.CharField(_("content hash"), max_length=64)
    embedding = VectorField(_("embedding"))
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("knowledge embedding")
        verbose_name_plural = _("knowledge embeddings")
        constraints = [
            models.UniqueConstraint(
                fields=["entry", "embedder"], name="sophie_embedding_entry_embedder"
            )
        ]

    def __str__(self) -> str:
        return f"{self.entry_id} · {self.embedder}"
