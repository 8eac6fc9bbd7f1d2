"""The demo site's copy in English and Brazilian Portuguese.

Kept as data rather than gettext catalogs so the demo runs without a
``compilemessages`` step; sophie-chat's own widget strings come from the
package's catalogs. Prices and rules here agree with the knowledge base the
assistant answers from (``knowledge/home_services.json``).
"""

SITE = {
    "en": {
        "tagline": "Home services you can trust",
        "nav_services": "Services",
        "nav_how": "How it works",
        "nav_help": "Help",
        "nav_main": "Main",
        "language": "Language",
        "login": "Log in",
        "logout": "Log out",
        "account": "My account",
        "footer": "A demo site for sophie-chat. Casa Pronta is not a real company.",
        "hero_eyebrow": "São Paulo · Rio · Belo Horizonte · Curitiba · Porto Alegre",
        "hero_title": "Your home, ready. Without the headache.",
        "hero_text": (
            "Book vetted cleaners, plumbers and electricians in minutes. "
            "Pay by Pix or card only when the job is done."
        ),
        "ask": "Ask Sophie",
        "browse": "See all services",
        "trust": [
            ("4.8★", "average rating"),
            ("12,000+", "jobs done"),
            ("90 days", "guarantee on repairs"),
        ],
        "services_title": "Our services",
        "services_text": "Fixed prices shown before you book. No surprises on the day.",
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
        "help_center": "Help center",
        "help_center_text": (
            "Everything Sophie knows comes from these pages. Can't find it? Ask her in the chat."
        ),
        "service_help": "Ask Sophie anything about this service.",
        "book": "Book now",
        "book_note": "Booking is not part of this demo: ask Sophie how it works.",
        "login_title": "Log in to Casa Pronta",
        "login_text": (
            "Two demo accounts are ready. Sophie knows who you are once you log in, and "
            "the conversation you started as a visitor stays with you."
        ),
        "demo_client": "Demo client",
        "demo_client_text": "Ana books cleanings and repairs for her flat in São Paulo.",
        "demo_provider": "Demo provider",
        "demo_provider_text": "Carlos is an electrician who takes jobs through Casa Pronta.",
        "open_inbox": "Open the inbox",
        "demo_agent": "Demo support agent",
        "demo_agent_text": (
            "Bia answers visitors who ask for a person, in the inbox at /chat/inbox/."
        ),
        "login_as": "Log in as %(name)s",
        "username": "Username",
        "password": "Password",
        "or_form": "Or type the username and password",
        "login_error": "That username and password do not match a demo account.",
        "bookings_title": "My bookings",
        "jobs_title": "My jobs",
        "payouts_title": "Payouts",
        "payouts_text": "Every Tuesday, for the jobs clients confirmed the week before.",
        "account_chat": "Sophie knows you are logged in: ask her about your bookings' rules.",
        "hello": "Hello, %(name)s",
        "client": "client",
        "provider": "provider",
        "suggestions": [
            "How much does a cleaning cost?",
            "How do I book a service?",
            "Which payment methods do you accept?",
        ],
    },
    "pt-br": {
        "tagline": "Serviços para sua casa, com confiança",
        "nav_services": "Serviços",
        "nav_how": "Como funciona",
        "nav_help": "Ajuda",
        "nav_main": "Principal",
        "language": "Idioma",
        "login": "Entrar",
        "logout": "Sair",
        "account": "Minha conta",
        "footer": "Site de demonstração do sophie-chat. A Casa Pronta não é uma empresa real.",
        "hero_eyebrow": "São Paulo · Rio · Belo Horizonte · Curitiba · Porto Alegre",
        "hero_title": "Sua casa pronta. Sem dor de cabeça.",
        "hero_text": (
            "Contrate diaristas, encanadores e eletricistas verificados em minutos. "
            "Pague por Pix ou cartão só quando o serviço estiver concluído."
        ),
        "ask": "Fale com a Sophie",
        "browse": "Ver todos os serviços",
        "trust": [
            ("4,8★", "nota média"),
            ("12.000+", "serviços realizados"),
            ("90 dias", "de garantia em reparos"),
        ],
        "services_title": "Nossos serviços",
        "services_text": "Preço fechado antes de agendar. Sem surpresas no dia.",
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
        "help_center": "Central de ajuda",
        "help_center_text": (
            "Tudo o que a Sophie sabe vem destas páginas. Não achou? Pergunte a ela no chat."
        ),
        "service_help": "Pergunte à Sophie qualquer coisa sobre este serviço.",
        "book": "Agendar",
        "book_note": (
            "O agendamento não faz parte desta demonstração: pergunte à Sophie como funciona."
        ),
        "login_title": "Entrar na Casa Pronta",
        "login_text": (
            "Duas contas de demonstração estão prontas. A Sophie sabe quem você é quando você "
            "entra, e a conversa que você começou como visitante continua com você."
        ),
        "demo_client": "Cliente de demonstração",
        "demo_client_text": "A Ana agenda faxinas e reparos para o apartamento dela em São Paulo.",
        "demo_provider": "Prestador de demonstração",
        "demo_provider_text": "O Carlos é eletricista e recebe serviços pela Casa Pronta.",
        "open_inbox": "Abrir a caixa de atendimento",
        "demo_agent": "Atendente de demonstração",
        "demo_agent_text": (
            "A Bia atende quem pede para falar com uma pessoa, na caixa em /chat/inbox/."
        ),
        "login_as": "Entrar como %(name)s",
        "username": "Usuário",
        "password": "Senha",
        "or_form": "Ou digite o usuário e a senha",
        "login_error": "Esse usuário e senha não correspondem a uma conta de demonstração.",
        "bookings_title": "Meus agendamentos",
        "jobs_title": "Meus serviços",
        "payouts_title": "Repasses",
        "payouts_text": "Toda terça-feira, pelos serviços confirmados na semana anterior.",
        "account_chat": (
            "A Sophie sabe que você entrou: pergunte a ela sobre as regras dos seus agendamentos."
        ),
        "hello": "Olá, %(name)s",
        "client": "cliente",
        "provider": "prestador",
        "suggestions": [
            "Quanto custa uma faxina?",
            "Como agendar um serviço?",
            "Quais formas de pagamento vocês aceitam?",
        ],
    },
}

SERVICES = {
    "cleaning": {
        "price": 150,
        "en": {
            "name": "House cleaning",
            "summary": "Regular or deep cleaning by trusted, background-checked cleaners.",
            "details": (
                "A standard cleaning starts at R$ 150 for up to 60 m², plus R$ 2.50 per extra "
                "m². Deep cleaning, post-construction cleaning and extras such as the inside "
                "of the oven or fridge are priced separately; you see the final price before "
                "you confirm."
            ),
        },
        "pt-br": {
            "name": "Limpeza residencial",
            "summary": "Faxina comum ou pesada com diaristas de confiança e antecedentes checados.",
            "details": (
                "A faxina padrão começa em R$ 150 para até 60 m², mais R$ 2,50 por m² "
                "adicional. Faxina pesada, limpeza pós-obra e extras como forno e geladeira "
                "são cobrados à parte; você vê o preço final antes de confirmar."
            ),
        },
    },
    "plumbing": {
        "price": 90,
        "en": {
            "name": "Plumbing",
            "summary": "Leaks, clogged drains, taps, toilets and water heaters.",
            "details": (
                "A plumber visits, diagnoses the problem and gives you a fixed quote before "
                "starting; the visit fee is deducted if you approve it. Emergency visits are "
                "available every day from 7am to 10pm."
            ),
        },
        "pt-br": {
            "name": "Encanador",
            "summary": "Vazamentos, entupimentos, torneiras, vasos sanitários e aquecedores.",
            "details": (
                "O encanador faz a visita, diagnostica o problema e passa um orçamento fechado "
                "antes de começar; a taxa de visita é descontada se você aprovar. Atendimento "
                "de emergência todos os dias, das 7h às 22h."
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
                "showers and breaker panels, following the NBR 5410 standard. Every job comes "
                "with a 90-day guarantee."
            ),
        },
        "pt-br": {
            "name": "Eletricista",
            "summary": "Tomadas, interruptores, iluminação, chuveiros e disjuntores.",
            "details": (
                "Eletricistas certificados instalam e consertam tomadas, luminárias, "
                "chuveiros elétricos e quadros de disjuntores, seguindo a NBR 5410. Todo "
                "serviço tem garantia de 90 dias."
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
                "and floors and leave the place clean. Painting has a 90-day guarantee."
            ),
        },
        "pt-br": {
            "name": "Pintura",
            "summary": "Paredes, tetos, portas e pequenos retoques, por dentro e por fora.",
            "details": (
                "Peça um orçamento por cômodo ou por metro quadrado. Os pintores protegem "
                "seus móveis e o piso e deixam tudo limpo. Pintura tem garantia de 90 dias."
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

# The help center's pages: each knowledge entry's `url` is one of these, so the
# sources under Sophie's answers lead to a page that says the same thing.
HELP_TOPICS = {
    "/help/booking/": {"en": "Booking a service", "pt-br": "Como agendar"},
    "/help/rescheduling/": {"en": "Rescheduling", "pt-br": "Remarcação"},
    "/help/cancellation/": {"en": "Cancellation", "pt-br": "Cancelamento"},
    "/help/payments/": {"en": "Payments", "pt-br": "Pagamentos"},
    "/help/refunds/": {"en": "Refunds", "pt-br": "Reembolsos"},
    "/providers/how-we-vet/": {
        "en": "How we vet providers",
        "pt-br": "Como selecionamos os profissionais",
    },
    "/coverage/": {"en": "Where we work", "pt-br": "Onde atendemos"},
    "/guarantee/": {"en": "Our guarantee", "pt-br": "Nossa garantia"},
    "/privacy/": {"en": "Privacy", "pt-br": "Privacidade"},
}

# What the demo provider sees on their account page (made up, like the company).
JOBS = {
    "en": [
        ("Electric shower installation", "Thu, 09:00", "Pinheiros, São Paulo", "R$ 180"),
        ("Replace three sockets", "Sat, 11:00", "Moema, São Paulo", "R$ 120"),
    ],
    "pt-br": [
        ("Instalação de chuveiro elétrico", "qui., 09:00", "Pinheiros, São Paulo", "R$ 180"),
        ("Troca de três tomadas", "sáb., 11:00", "Moema, São Paulo", "R$ 120"),
    ],
}
