"""The service catalog (what search_services reads), and the price of each booking."""

from decimal import Decimal

from django.db import migrations, models

# slug, price, name, name (pt-BR), summary, summary (pt-BR): as on the site (demo/content.py).
SERVICES = (
    (
        "cleaning",
        150,
        "House cleaning",
        "Limpeza residencial",
        "Regular or deep cleaning by trusted, background-checked cleaners.",
        "Faxina comum ou pesada com diaristas de confiança e antecedentes checados.",
    ),
    (
        "plumbing",
        90,
        "Plumbing",
        "Encanador",
        "Leaks, clogged drains, taps, toilets and water heaters.",
        "Vazamentos, entupimentos, torneiras, vasos sanitários e aquecedores.",
    ),
    (
        "electrical",
        100,
        "Electrical",
        "Eletricista",
        "Sockets, switches, lighting, showers and circuit breakers.",
        "Tomadas, interruptores, iluminação, chuveiros e disjuntores.",
    ),
    (
        "painting",
        250,
        "Painting",
        "Pintura",
        "Walls, ceilings, doors and small touch-ups, inside and out.",
        "Paredes, tetos, portas e pequenos retoques, por dentro e por fora.",
    ),
    (
        "assembly",
        80,
        "Furniture assembly",
        "Montagem de móveis",
        "Wardrobes, beds, shelves and TV wall mounts.",
        "Guarda-roupas, camas, estantes e suportes de TV.",
    ),
)

# What the bookings of 0002 cost.
BOOKING_PRICES = {
    "Deep cleaning": 320,
    "Electrical repair: shower": 140,
    "Plumbing: kitchen tap": 90,
}


def create_catalog(apps, schema_editor):
    Service = apps.get_model("demo", "Service")
    Booking = apps.get_model("demo", "Booking")
    for slug, price, name, name_pt, summary, summary_pt in SERVICES:
        Service.objects.get_or_create(
            slug=slug,
            defaults={
                "price": Decimal(price),
                "name": name,
                "name_pt_br": name_pt,
                "summary": summary,
                "summary_pt_br": summary_pt,
            },
        )
    for service, price in BOOKING_PRICES.items():
        Booking.objects.filter(service=service).update(price=Decimal(price))


class Migration(migrations.Migration):
    dependencies = [("demo", "0002_bookings")]

    operations = [
        migrations.CreateModel(
            name="Service",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("slug", models.SlugField(unique=True, verbose_name="slug")),
                ("name", models.CharField(max_length=100, verbose_name="name")),
                (
                    "name_pt_br",
                    models.CharField(max_length=100, verbose_name="name (Portuguese)"),
                ),
                ("summary", models.CharField(max_length=200, verbose_name="summary")),
                (
                    "summary_pt_br",
                    models.CharField(max_length=200, verbose_name="summary (Portuguese)"),
                ),
                (
                    "price",
                    models.DecimalField(
                        decimal_places=2, max_digits=10, verbose_name="price from (R$)"
                    ),
                ),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.AddField(
            model_name="booking",
            name="price",
            field=models.DecimalField(
                decimal_places=2, default=Decimal("0"), max_digits=10, verbose_name="price (R$)"
            ),
        ),
        migrations.RunPython(create_catalog, migrations.RunPython.noop),
    ]
