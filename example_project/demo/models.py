"""The demo's one model: a client's booking of a service (for the chat's context)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Booking(models.Model):
    """A visit a client booked: what, when, with whom."""

    class Status(models.TextChoices):
        CONFIRMED = "confirmed", _("Confirmed")
        PENDING = "pending", _("Waiting for a provider")
        CANCELLED = "cancelled", _("Cancelled")

    client = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bookings"
    )
    service = models.CharField(_("service"), max_length=100)
    starts_at = models.DateTimeField(_("starts at"))
    provider_name = models.CharField(_("provider"), max_length=100, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.CONFIRMED
    )

    class Meta:
        ordering = ["starts_at"]

    def __str__(self) -> str:
        return f"{self.service} · {self.starts_at:%Y-%m-%d %H:%M}"
