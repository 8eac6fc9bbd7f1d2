# ruff: noqa: E501 (templates read best one per line)
"""Generated distractor entries: plausible knowledge of a larger marketplace.

They pad the demo knowledge base to thousands of entries so the benchmark
measures ranking and speed at a realistic size. They are about services,
places and policies the labelled questions do not ask about, but they share
their vocabulary ("how much does ... cost", "cancel", "agendar", "garantia"),
so a ranking that only counts common words ranks them first. Deterministic
for a given seed.
"""

from __future__ import annotations

import random
from typing import Any

SERVICES = {
    "en": [
        "painting",
        "gardening",
        "pest control",
        "furniture assembly",
        "air conditioning maintenance",
        "locksmith",
        "glass repair",
        "moving",
        "carpentry",
        "roof repair",
        "pool maintenance",
        "tiling",
        "wallpapering",
        "curtain installation",
        "appliance repair",
        "computer support",
        "dog walking",
        "babysitting",
        "personal training",
        "photography",
        "catering",
        "tailoring",
        "car wash",
        "solar panel installation",
        "masonry",
    ],
    "pt-br": [
        "pintura",
        "jardinagem",
        "dedetização",
        "montagem de móveis",
        "manutenção de ar-condicionado",
        "chaveiro",
        "vidraceiro",
        "mudança",
        "marcenaria",
        "conserto de telhado",
        "manutenção de piscina",
        "assentamento de piso",
        "papel de parede",
        "instalação de cortinas",
        "conserto de eletrodomésticos",
        "suporte de informática",
        "passeio com cachorro",
        "babá",
        "personal trainer",
        "fotografia",
        "buffet",
        "costura",
        "lavagem de carro",
        "instalação de placas solares",
        "alvenaria",
    ],
}
CITIES = [
    "Recife",
    "Salvador",
    "Fortaleza",
    "Manaus",
    "Belém",
    "Goiânia",
    "Campinas",
    "Natal",
    "Maceió",
    "Florianópolis",
    "Vitória",
    "Londrina",
    "Santos",
    "Niterói",
    "Uberlândia",
    "Joinville",
    "Teresina",
    "Cuiabá",
    "Aracaju",
    "Sorocaba",
]
PLACES = {
    "en": ["apartment", "office", "garden", "shop", "garage", "warehouse", "school", "studio"],
    "pt-br": [
        "apartamento",
        "escritório",
        "quintal",
        "loja",
        "garagem",
        "galpão",
        "escola",
        "estúdio",
    ],
}
DAYS = {
    "en": ["Saturdays", "Sundays", "holidays", "weekday evenings", "Carnival"],
    "pt-br": ["sábados", "domingos", "feriados", "noites de semana", "Carnaval"],
}
TEMPLATES = {
    "en": [
        (
            "How much does {service} cost in {city}?",
            "{Service} in {city} starts at R$ {price} per visit; the final price depends on the size of the {place}.",
        ),
        (
            "Do you offer {service} on {day}?",
            "Yes, {service} is available on {day} in {city} for an extra fee of {percent}%.",
        ),
        (
            "What is included in {service} for a {place}?",
            "{Service} for a {place} includes materials up to R$ {price} and {hours} hours of work.",
        ),
        (
            "How long does {service} take in a {place}?",
            "Most {service} jobs in a {place} take {hours} hours; larger jobs are split over several days.",
        ),
        (
            "Can I cancel a {service} subscription plan?",
            "Monthly {service} plans can be paused or ended in the app before the next billing date.",
        ),
        (
            "Is there a discount on {service} for a {place} in {city}?",
            "Customers in {city} get {percent}% off their first {service} job for a {place}.",
        ),
        (
            "Who provides {service} near {city}?",
            "Partner companies certified for {service} serve {city} and nearby towns.",
        ),
        (
            "Do I need to be home during {service}?",
            "For {service} someone over 18 must let the professional in and sign off the job.",
        ),
        (
            "Which tools do {service} professionals bring to a {place}?",
            "They bring their own tools; special equipment for {service} costs R$ {price} extra.",
        ),
        (
            "Can I book {service} for a {place} on {day}?",
            "Bookings of {service} on {day} open two weeks in advance in {city}.",
        ),
    ],
    "pt-br": [
        (
            "Quanto custa {service} em {city}?",
            "{Service} em {city} começa em R$ {price} por visita; o preço final depende do tamanho do {place}.",
        ),
        (
            "Vocês fazem {service} aos {day}?",
            "Sim, {service} aos {day} em {city} tem um acréscimo de {percent}%.",
        ),
        (
            "O que está incluído em {service} para {place}?",
            "{Service} para {place} inclui materiais até R$ {price} e {hours} horas de trabalho.",
        ),
        (
            "Quanto tempo leva {service} em um {place}?",
            "A maioria dos trabalhos de {service} em {place} leva {hours} horas; os maiores são divididos em dias.",
        ),
        (
            "Posso cancelar o plano mensal de {service}?",
            "Planos mensais de {service} podem ser pausados ou encerrados no app antes da próxima cobrança.",
        ),
        (
            "Tem desconto em {service} para {place} em {city}?",
            "Clientes de {city} ganham {percent}% de desconto no primeiro serviço de {service} para {place}.",
        ),
        (
            "Quem faz {service} perto de {city}?",
            "Empresas parceiras certificadas em {service} atendem {city} e cidades vizinhas.",
        ),
        (
            "Preciso estar em casa durante {service}?",
            "Para {service}, alguém maior de 18 anos precisa receber o profissional e aprovar o trabalho.",
        ),
        (
            "Quais ferramentas os profissionais de {service} levam para {place}?",
            "Eles levam as próprias ferramentas; equipamentos especiais de {service} custam R$ {price} a mais.",
        ),
        (
            "Posso agendar {service} para {place} aos {day}?",
            "Agendamentos de {service} aos {day} abrem com duas semanas de antecedência em {city}.",
        ),
    ],
}


def distractors(count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` distinct entries (dicts of KnowledgeBaseEntry fields), half in each language."""
    rng = random.Random(seed)
    entries: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    attempts = 0
    while len(entries) < count:
        attempts += 1
        if attempts > count * 50:
            raise ValueError(f"cannot generate {count} distinct distractors")
        locale = "en" if len(entries) % 2 == 0 else "pt-br"
        service = rng.choice(SERVICES[locale])
        question_template, answer_template = rng.choice(TEMPLATES[locale])
        values = {
            "service": service,
            "Service": service[0].upper() + service[1:],
            "city": rng.choice(CITIES),
            "place": rng.choice(PLACES[locale]),
            "day": rng.choice(DAYS[locale]),
            "price": rng.randrange(80, 2000, 10),
            "percent": rng.choice([5, 10, 15, 20, 25]),
            "hours": rng.randint(1, 12),
        }
        question = question_template.format(**values)
        if (question, locale) in seen:
            continue
        seen.add((question, locale))
        entries.append(
            {
                "question": question,
                "answer": answer_template.format(**values),
                "category": "generated",
                "keywords": [service],
                "locale": locale,
                "url": f"/generated/{len(entries)}/",
            }
        )
    return entries
