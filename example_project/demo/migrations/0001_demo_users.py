"""Creates the demo's client and provider accounts (see demo/accounts.py)."""

from django.contrib.auth.hashers import make_password
from django.db import migrations

# Copied, not imported, so that this migration keeps meaning what it meant.
PASSWORD = "casapronta"
ACCOUNTS = (
    ("ana", "Ana", "Souza", "ana@casapronta.example", False),
    ("carlos", "Carlos", "Lima", "carlos@casapronta.example", True),
)


def create_demo_users(apps, schema_editor):
    User = apps.get_model("auth", "User")
    Group = apps.get_model("auth", "Group")
    providers, _ = Group.objects.get_or_create(name="providers")
    for username, first_name, last_name, email, is_provider in ACCOUNTS:
        user, _ = User.objects.update_or_create(
            username=username,
            defaults={
                "first_name": first_name,
                "last_name": last_name,
                "email": email,
                "password": make_password(PASSWORD),
                "is_active": True,
            },
        )
        if is_provider:
            user.groups.add(providers)


def remove_demo_users(apps, schema_editor):
    User = apps.get_model("auth", "User")
    User.objects.filter(username__in=[account[0] for account in ACCOUNTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create_demo_users, remove_demo_users)]
