"""The demo site's copy in English and Brazilian Portuguese.

Kept as data rather than gettext catalogs so the demo runs without a
``compilemessages`` step; sophie-chat's own widget strings come from the
package's catalogs.
"""

SITE = {
    "en": {
        "tagline": "Home services you can trust",
        "nav_services": "Services",
        "nav_how": "How it works",
        "language": "Language",
        "footer": "A demo site for sophie-chat. Casa Pronta is not a real company.",
        "hero_title": "Your home, ready. Without the headache.",
        "hero_text": (
            "Book vetted cleaners, plumbers and electricians in minutes. "
            "Pay by PIX or card only when the job is done."
        ),
        "ask": "Ask Sophie",
        "services_title": "Our services",
        "from": "from",
        "more": "Learn more",
        "back": "All services",
        "how_title": "How it works",
        "steps": [
            ("Tell us what you need", "Pick a service, a date and a time that suit you."),
            (
                "Choose a professional",
                "Compare ratings, reviews and prices of verified providers near you.",
            ),
            (
                "Relax, then pay",
                "Payment is released only after you confirm the job was done well.",
            ),
        ],
        "help_title": "Questions?",
        "help_text": (
            "Sophie, our assistant, knows our prices, bookings, payments and guarantees. "
            "Open the chat in the corner: your conversation follows you from page to page."
        ),
        "service_help": "Ask Sophie anything about this service.",
    },
    "pt-br": {
        "tagline": "Serviços para sua casa, com confiança",
        "nav_services": "Serviços",
        "nav_how": "Como funciona",
        "language": "Idioma",
        "footer": "Site de demonstração do sophie-chat. A Casa Pronta não é uma empresa real.",
        "hero_title": "Sua casa pronta. Sem dor de cabeça.",
        "hero_text": (
            "Contrate diaristas, encanadores e eletricistas verificados em minutos. "
            "Pague por PIX ou cartão só quando o serviço estiver concluído."
        ),
        "ask": "Fale com a Sophie",
        "services_title": "Nossos serviços",
        "from": "a partir de",
        "more": "Saiba mais",
        "back": "Todos os serviços",
        "how_title": "Como funciona",
        "steps": [
            ("Conte o que você precisa", "Escolha o serviço, a data e o horário que preferir."),
            (
                "Escolha um profissional",
                "Compare avaliações, comentários e preços de prestadores verificados "
                "perto de você.",
            ),
            (
                "Relaxe e depois pague",
                "O pagamento só é liberado quando você confirma que o serviço ficou bem feito.",
            ),
        ],
        "help_title": "Dúvidas?",
        "help_text": (
            "A Sophie, nossa assistente, conhece nossos preços, agendamentos, pagamentos e "
            "garantias. Abra o chat no canto da tela: a conversa acompanha você de página "
            "em página."
        ),
        "service_help": "Pergunte à Sophie qualquer coisa sobre este serviço.",
    },
}

SERVICES = {
    "cleaning": {
        "price": 120,
        "en": {
            "name": "House cleaning",
            "summary": "Regular or deep cleaning by trusted, background-checked cleaners.",
            "details": (
                "Choose a standard clean (4 or 8 hours) or a deep clean for moving in or out. "
                "Cleaners bring their own products on request. Recurring weekly or fortnightly "
                "bookings get 10% off."
            ),
        },
        "pt-br": {
            "name": "Limpeza residencial",
            "summary": "Faxina comum ou pesada com diaristas de confiança e antecedentes checados.",
            "details": (
                "Escolha uma faxina padrão (4 ou 8 horas) ou uma limpeza pesada para mudança. "
                "A diarista leva os produtos, se você pedir. Agendamentos semanais ou "
                "quinzenais têm 10% de desconto."
            ),
        },
    },
    "plumbing": {
        "price": 90,
        "en": {
            "name": "Plumbing",
            "summary": "Leaks, clogged drains, taps, toilets and water heaters.",
            "details": (
                "A plumber visits, diagnoses the problem and gives you a fixed price before "
                "starting. Emergency visits are available 24 hours a day in São Paulo and "
                "Rio de Janeiro."
            ),
        },
        "pt-br": {
            "name": "Encanador",
            "summary": "Vazamentos, entupimentos, torneiras, vasos sanitários e aquecedores.",
            "details": (
                "O encanador faz a visita, diagnostica o problema e passa um preço fechado "
                "antes de começar. Atendimento de emergência 24 horas em São Paulo e no Rio "
                "de Janeiro."
            ),
        },
    },
    "electrical": {
        "price": 100,
        "en": {
            "name": "Electrical",
            "summary": "Sockets, switches, lighting, showers and circuit breakers.",
            "details": (
                "Certified electricians install and repair sockets, light fittings, electric "
                "showers and breaker panels. Every job comes with a 90-day guarantee."
            ),
        },
        "pt-br": {
            "name": "Eletricista",
            "summary": "Tomadas, interruptores, iluminação, chuveiros e disjuntores.",
            "details": (
                "Eletricistas certificados instalam e consertam tomadas, luminárias, "
                "chuveiros elétricos e quadros de disjuntores. Todo serviço tem garantia "
                "de 90 dias."
            ),
        },
    },
    "painting": {
        "price": 250,
        "en": {
            "name": "Painting",
            "summary": "Walls, ceilings, doors and small touch-ups, inside and out.",
            "details": (
                "Get a quote per room or per square metre. Painters protect your furniture "
                "and floors and leave the place clean."
            ),
        },
        "pt-br": {
            "name": "Pintura",
            "summary": "Paredes, tetos, portas e pequenos retoques, por dentro e por fora.",
            "details": (
                "Peça um orçamento por cômodo ou por metro quadrado. Os pintores protegem "
                "seus móveis e o piso e deixam tudo limpo."
            ),
        },
    },
    "assembly": {
        "price": 80,
        "en": {
            "name": "Furniture assembly",
            "summary": "Wardrobes, beds, shelves and TV wall mounts.",
            "details": (
                "Flat-pack furniture assembled and fixed to the wall where needed. Tell us "
                "the brand and model when booking so the right tools come along."
            ),
        },
        "pt-br": {
            "name": "Montagem de móveis",
            "summary": "Guarda-roupas, camas, estantes e suportes de TV.",
            "details": (
                "Móveis desmontados montados e fixados na parede quando preciso. Informe a "
                "marca e o modelo ao agendar para o montador levar as ferramentas certas."
            ),
        },
    },
}
