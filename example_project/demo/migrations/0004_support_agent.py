"""Creates Bia, the demo's support agent, in a "support" group that may use the inbox."""

from django.contrib.auth.hashers import make_password
from django.db import migrations

# Copied, not imported, so that this migration keeps meaning what it meant.
PASSWORD = "casapronta"


def create_agent(apps, schema_editor):
    User = apps.get_model("auth", "User")
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    # Permissions are created after the last migration; this one needs it now.
    handoff, _ = ContentType.objects.get_or_create(app_label="sophie_chat", model="handoff")
    permission, _ = Permission.objects.get_or_create(
        codename="handle_conversation",
        content_type=handoff,
        defaults={"name": "Can take over conversations from Sophie"},
    )
    support, _ = Group.objects.get_or_create(name="support")
    support.permissions.add(permission)
    user, _ = User.objects.update_or_create(
        username="bia",
        defaults={
            "first_name": "Bia",
            "last_name": "Rocha",
            "email": "bia@casapronta.example",
            "password": make_password(PASSWORD),
            "is_active": True,
        },
    )
    user.groups.add(support)


def remove_agent(apps, schema_editor):
    apps.get_model("auth", "User").objects.filter(username="bia").delete()
    apps.get_model("auth", "Group").objects.filter(name="support").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("demo", "0003_service_catalog"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("sophie_chat", "0006_handoff"),
    ]

    operations = [migrations.RunPython(create_agent, remove_agent)]
