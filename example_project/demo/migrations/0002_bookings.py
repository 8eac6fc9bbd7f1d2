"""The Booking model, and a few upcoming bookings for the demo client (ana)."""

from datetime import timedelta

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

# Relative to the day the demo is migrated, so they are upcoming when you try it.
BOOKINGS = (
    ("Deep cleaning", 2, 9, "Marta Oliveira", "confirmed"),
    ("Electrical repair: shower", 6, 14, "João Pereira", "confirmed"),
    ("Plumbing: kitchen tap", 13, 10, "", "pending"),
)


def create_bookings(apps, schema_editor):
    User = apps.get_model("auth", "User")
    Booking = apps.get_model("demo", "Booking")
    client = User.objects.filter(username="ana").first()
    if client is None:
        return
    today = timezone.localtime().replace(minute=0, second=0, microsecond=0)
    for service, days, hour, provider, status in BOOKINGS:
        Booking.objects.get_or_create(
            client=client,
            service=service,
            defaults={
                "starts_at": (today + timedelta(days=days)).replace(hour=hour),
                "provider_name": provider,
                "address": "Rua das Flores, 123",
                "status": status,
            },
        )


class Migration(migrations.Migration):
    dependencies = [
        ("demo", "0001_demo_users"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Booking",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("service", models.CharField(max_length=100, verbose_name="service")),
                ("starts_at", models.DateTimeField(verbose_name="starts at")),
                (
                    "provider_name",
                    models.CharField(blank=True, max_length=100, verbose_name="provider"),
                ),
                ("address", models.CharField(blank=True, max_length=200, verbose_name="address")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("confirmed", "Confirmed"),
                            ("pending", "Waiting for a provider"),
                            ("cancelled", "Cancelled"),
                        ],
                        default="confirmed",
                        max_length=16,
                        verbose_name="status",
                    ),
                ),
                (
                    "client",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="bookings",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["starts_at"]},
        ),
        migrations.RunPython(create_bookings, migrations.RunPython.noop),
    ]
