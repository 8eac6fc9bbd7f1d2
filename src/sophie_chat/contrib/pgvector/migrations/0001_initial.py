import django.db.models.deletion
from django.db import migrations, models

import sophie_chat.contrib.pgvector.fields


def create_extension(apps, schema_editor):
    # Where the server offers pgvector, install it in this database; elsewhere
    # the embeddings are stored as text and compared in Python.
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if cursor.fetchone() is not None:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
    connection._sophie_has_pgvector = None


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("sophie_chat", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_extension, migrations.RunPython.noop, elidable=False),
        migrations.CreateModel(
            name="KnowledgeEmbedding",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("embedder", models.CharField(max_length=200, verbose_name="embedder")),
                ("content_hash", models.CharField(max_length=64, verbose_name="content hash")),
                (
                    "embedding",
                    sophie_chat.contrib.pgvector.fields.VectorField(verbose_name="embedding"),
                ),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated")),
                (
                    "entry",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="sophie_chat.knowledgebaseentry",
                        verbose_name="knowledge base entry",
                    ),
                ),
            ],
            options={
                "verbose_name": "knowledge embedding",
                "verbose_name_plural": "knowledge embeddings",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("entry", "embedder"), name="sophie_embedding_entry_embedder"
                    )
                ],
            },
        ),
    ]
