"""The demo's models: the service catalog, and a client's bookings of those services."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Service(models.Model):
    """A service Casa Pronta offers, and its starting price (what ``search_services`` reads)."""

    slug = models.SlugField(_("slug"), unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_pt_br = models.CharField(_("name (Portuguese)"), max_length=100)
    summary = models.CharField(_("summary"), max_length=200)
    summary_pt_br = models.CharField(_("summary (Portuguese)"), max_length=200)
    price = models.DecimalField(_("price from (R$)"), max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Booking(models.Model):
    """A visit a client booked: what, when, with whom, for how much."""

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
    price = models.DecimalField(
        _("price (R$)"), max_digits=10, decimal_places=2, default=Decimal("0")
    )

    class Meta:
        ordering = ["starts_at"]

    def __str__(self) -> str:
        return f"{self.service} · {self.starts_at:%Y-%m-%d %H:%M}"
