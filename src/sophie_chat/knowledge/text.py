"""Text normalisation for knowledge search, in Portuguese and English.

:func:`terms` turns a question or an entry into search terms: lowercase,
accents folded (``"orçamento"`` and ``"orcamento"`` are the same term),
common pt-BR chat abbreviations expanded (``"vc"`` is ``"voce"``), stopwords
dropped and every word reduced by a light suffix stemmer, so plurals and verb
forms meet (``"eletricistas"`` and ``"eletricista"``; ``"cancelei"``,
``"cancelar"``, ``"cancelled"`` and ``"cancel"``).

The same function runs on the entries and on the query, and it does not need
to know which language a word is in: the stemmer applies Portuguese and
English rules alike, so both sides of a comparison are reduced the same way.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+")

# Abbreviations common in pt-BR chat, expanded before stopwords are dropped.
ABBREVIATIONS: dict[str, str] = {
    "vc": "voce",
    "vcs": "voces",
    "qto": "quanto",
    "qnto": "quanto",
    "qta": "quanta",
    "qtos": "quantos",
    "qnd": "quando",
    "qdo": "quando",
    "pq": "porque",
    "tb": "tambem",
    "tbm": "tambem",
    "q": "que",
    "oq": "o que",
    "msg": "mensagem",
    "msgs": "mensagens",
    "hj": "hoje",
    "td": "tudo",
    "tds": "todos",
    "obg": "obrigado",
    "obgd": "obrigado",
    "obrigada": "obrigado",
    "blz": "beleza",
    "vlw": "valeu",
    "mto": "muito",
    "mt": "muito",
    "mtos": "muitos",
    "cmg": "comigo",
    "ngm": "ninguem",
    "agr": "agora",
    "dps": "depois",
    "pfv": "por favor",
    "pfvr": "por favor",
    "pf": "por favor",
    "n": "nao",
    "ñ": "nao",
    "tel": "telefone",
    "cel": "celular",
    "info": "informacao",
    "infos": "informacoes",
    "qnt": "quanto",
    "qt": "quanto",
    "qts": "quantos",
    "qq": "qualquer",
    "qlq": "qualquer",
    "cm": "como",
    "cmo": "como",
    "nd": "nada",
    "ngn": "ninguem",
    "vdd": "verdade",
    "ctz": "certeza",
    "dnv": "de novo",
    "hr": "hora",
    "hrs": "horas",
    "fds": "fim de semana",
    "sab": "sabado",
    "dom": "domingo",
    "whats": "whatsapp",
    "wpp": "whatsapp",
    "zap": "whatsapp",
    "zapzap": "whatsapp",
    "grana": "dinheiro",
    "orc": "orcamento",
    "agend": "agendamento",
    "pgto": "pagamento",
    "pagto": "pagamento",
    "nro": "numero",
    "serv": "servico",
    "prof": "profissional",
    # English chat shorthand.
    "u": "you",
    "ur": "your",
    "r": "are",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "ty": "thanks",
    "appt": "appointment",
    "appts": "appointments",
    "acct": "account",
    "cuz": "because",
    "bc": "because",
    "tmrw": "tomorrow",
    "tmr": "tomorrow",
    "wknd": "weekend",
    "asap": "as soon as possible",
    "pymt": "payment",
    "pmt": "payment",
    "govt": "government",
}

# Accent-folded, as words are when they are compared.
_PORTUGUESE_STOPWORDS = """
    a o as os um uma uns umas ao aos de do da dos das em no na nos nas num numa
    por pelo pela pelos pelas para pra pro pras pros com sem sob sobre ate entre
    e ou mas nem que se como quando onde qual quais quem porque
    quanto quanta quantos quantas
    eu tu ele ela nos vos eles elas voce voces me te lhe lhes meu minha meus minhas
    seu sua seus suas teu tua nosso nossa nossos nossas dele dela deles delas
    este esta estes estas esse essa esses essas isto isso aquele aquela aquilo
    ser sou e era foi sao estar estou esta estao estava ter tenho tem tinha ha
    fazer faz fazem vou vai ir posso pode podem poderia gostaria quero queria preciso
    ja nao sim tambem muito muita muitos muitas mais menos so bem tudo todo toda
    todos todas algum alguma algo aqui ai la entao assim ainda agora hoje
    oi ola bom boa dia tarde noite obrigado valeu beleza favor
    alguem ninguem coisa coisas amanha ontem sempre nunca novo nova novos novas
    tempo vez vezes
"""
_ENGLISH_STOPWORDS = """
    a an the and or but nor if then so as of at by for from in into on onto to
    with without about over under up down out off than too very can could
    would should will shall may might must do does did doing done be am is are
    was were been being have has had having i me my mine we us our ours you
    your yours he him his she her hers it its they them their theirs this that
    these those what which who whom whose when where why how there here not no
    yes all any some each every other such only own same just also again once
    get got want wanted need please thanks thank hi hello hey okay ok
    much many more most less like tell say said know let make go give take
    s t d m ll re ve don didn doesn isn aren wasn weren won wouldn couldn shouldn
    haven hasn hadn cannot im ive id
    someone somebody anyone anybody something anything everything nothing
    somewhere anywhere everywhere
    today tomorrow yesterday often always never usually really still already
    soon new long
"""
STOPWORDS: frozenset[str] = frozenset((_PORTUGUESE_STOPWORDS + _ENGLISH_STOPWORDS).split())

# (suffix, replacement) rules; at most one rule of each table applies, the
# first that matches with at least _MIN_STEM characters left before it.
_MIN_STEM = 3
_PLURAL_RULES: tuple[tuple[str, str], ...] = (
    ("oes", "ao"),
    ("aes", "ao"),
    ("ais", "al"),
    ("eis", "el"),
    ("ois", "ol"),
    ("ies", "i"),
    ("res", "r"),
    ("zes", "z"),
    ("s", ""),
)
_KEEP_FINAL_S = ("ss", "us", "is")
_SUFFIX_RULES: tuple[tuple[str, str], ...] = tuple(
    sorted(
        (
            # Portuguese derivations and verb forms.
            ("amento", ""),
            ("imento", ""),
            ("eza", ""),
            ("acao", ""),
            ("icao", ""),
            ("mente", ""),
            ("ando", ""),
            ("endo", ""),
            ("indo", ""),
            ("aram", ""),
            ("eram", ""),
            ("iram", ""),
            ("amos", ""),
            ("emos", ""),
            ("imos", ""),
            ("avam", ""),
            ("ava", ""),
            ("ado", ""),
            ("ada", ""),
            ("ido", ""),
            ("ida", ""),
            ("ar", ""),
            ("er", ""),
            ("ir", ""),
            ("ei", ""),
            ("ou", ""),
            ("iu", ""),
            # Third person plural ("instalam", "atendem"); nouns in "-gem"
            # ("mensagem", "garagem") keep theirs, as their plurals need it.
            ("am", ""),
            ("em", ""),
            ("gem", "gem"),
            # English.
            ("ation", ""),
            ("ment", ""),
            ("ing", ""),
            ("ied", "i"),
            ("ed", ""),
        ),
        key=lambda rule: -len(rule[0]),
    )
)
_VOWELS = frozenset("aeiou")
# English past forms no suffix rule reaches, common in customer questions.
_IRREGULAR: dict[str, str] = {
    "paid": "pay",
    "sent": "send",
    "spent": "spend",
    "bought": "buy",
    "sold": "sell",
    "broke": "break",
    "broken": "break",
    "chose": "choose",
    "chosen": "choose",
    "kept": "keep",
    "lost": "lose",
    "left": "leave",
}
# Words that frame a question more than they name its topic ("how does X
# work?", "do you work in X?", "do you offer X?", "como funciona X?"): a search
# counts them at LIGHT_WEIGHT, so the word that names the topic decides.
_LIGHT_WORDS = """
    work works worked offer offers happen happens possible
    funciona funcionam funcionar oferece oferecem acontece possivel
    bring come leave put keep use see find check try look show ask stay wait
    thing things stuff way kind sort type
    trazer traz levar leva deixar deixo guardar colocar botar usar ver achar encontrar
    tentar olhar mostrar perguntar ficar esperar jeito tipo negocio
"""
LIGHT_WEIGHT = 0.5
# Stopwords that introduce the complement of a noun ("limpeza de piscina",
# "cleaning of pools", "classes for kids").
COMPLEMENT_WORDS = frozenset({"de", "da", "do", "das", "dos", "of", "for"})

# Words a visitor and a knowledge base use for the same thing, in the
# vocabulary of customer questions of any business (prices, hours, days,
# periods, family, bookings, payments, places), one group per line, English
# and Portuguese together. A query word also matches the other words of its
# group (at a discount: see sophie_chat.knowledge.ranking.SYNONYM_WEIGHT), so
# "what do you charge" finds the entry that says "cost", "yearly" the one
# that says "annual" and "weekdays" the one that says "Monday to Friday".
# Words of a business's own trade do not belong here: they are what entries'
# keywords are for.
_SYNONYM_GROUPS = """
    price prices pricing cost costs charge charges fee fees expensive cheap
        preco precos valor valores custo custos custa custam cobra cobram taxa taxas tarifa
        barato
    open opens opening close closes closing hours horario horarios abre abrem fecha fecham
    weekday weekdays monday tuesday wednesday thursday friday
        segunda terca quarta quinta sexta util uteis
    weekend weekends saturday saturdays sunday sundays sabado sabados domingo domingos
    yearly annual annually anual anuais
    monthly mensal mensais mensalidade
    weekly semanal
    child children kid kids son daughter baby babies toddler teen teenager
        crianca criancas filho filha filhos filhas bebe adolescente infantil
    cancel cancellation quit terminate unsubscribe cancelar cancelamento desistir rescindir
    book booking appointment reserve reservation
        agendar agendamento marcar reservar reserva
    pay paying payment payments pagar pagamento pagamentos
    refund refunds reimburse reimbursement reembolso estorno devolucao
    card cards cartao cartoes
    instalment instalments installment installments parcela parcelas parcelar parcelado
    address location located endereco localizacao
    parking park garage estacionamento estacionar garagem
    discount discounts promotion coupon desconto descontos promocao cupom
    phone telephone whatsapp telefone celular
    deliver delivery shipping entrega entregar frete
    guarantee guarantees warranty guaranteed garantia garantias
    register registration enrol enroll enrolment enrollment signup join joining
        inscrever inscricao matricular matricula cadastro cadastrar
"""


def fold(text: str) -> str:
    """``text`` lowercased, with accents and other combining marks removed."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _strip(word: str, rules: tuple[tuple[str, str], ...]) -> tuple[str, bool]:
    for suffix, replacement in rules:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            return word[: -len(suffix)] + replacement, True
    return word, False


# Pure and called for every word of every entry: the vocabulary is small.
@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stem of one folded word (Portuguese and English rules)."""
    word = _IRREGULAR.get(word, word)
    if len(word) <= _MIN_STEM or word.isdigit():
        return word
    if not word.endswith(_KEEP_FINAL_S):
        word, _ = _strip(word, _PLURAL_RULES)
    word, _ = _strip(word, _SUFFIX_RULES)
    # A final vowel: "cancela"/"cancele"/"cancelo", "service"/"servico".
    if len(word) > _MIN_STEM and word[-1] in "aeo":
        word = word[:-1]
    # A doubled final consonant: "cancell(ed)", "stopp(ing)".
    if len(word) > _MIN_STEM and word[-1] == word[-2] and word[-1] not in _VOWELS:
        word = word[:-1]
    # Final "y" and "m" stand for "i" and "n": "apply"/"applied", and the
    # Portuguese plural "mensagem"/"mensagens" (which would otherwise need an
    # "-ns" rule that breaks English "plans", "returns").
    if len(word) > _MIN_STEM and word[-1] in "ym":
        word = word[:-1] + ("i" if word[-1] == "y" else "n")
    return word


def words(text: str) -> list[str]:
    """The folded words of ``text`` with abbreviations expanded, before stopwords."""
    result: list[str] = []
    for word in _WORD.findall(fold(text)):
        expansion = ABBREVIATIONS.get(word)
        if expansion is None:
            result.append(word)
        else:
            result.extend(expansion.split())
    return result


def written_words(text: str) -> list[str]:
    """The lowercased words of ``text`` as written, accents kept, abbreviations not expanded."""
    return _WORD.findall(text.lower())


def query_words(text: str) -> list[str]:
    """The words of ``text`` worth searching for, as written (accents kept, lowercased).

    Abbreviations are expanded and stopwords dropped, as in :func:`terms`;
    for engines that stem words themselves (PostgreSQL full-text search).
    """
    result: list[str] = []
    for written in written_words(text):
        expansion = ABBREVIATIONS.get(fold(written))
        for word in expansion.split() if expansion is not None else [written]:
            if fold(word) not in STOPWORDS:
                result.append(word)
    return result


def terms(text: str) -> list[str]:
    """The search terms of ``text``, in order, repeats kept."""
    return [stem(word) for word in words(text) if word not in STOPWORDS]


#: The stems of the light words (see ``_LIGHT_WORDS``).
LIGHT_TERMS: frozenset[str] = frozenset(stem(word) for word in _LIGHT_WORDS.split())


def _synonyms(groups: str) -> dict[str, frozenset[str]]:
    by_term: dict[str, set[str]] = {}
    group: list[str] = []
    for line in [*groups.splitlines(), ""]:
        # A group's continuation lines are indented further than its first.
        if line.startswith("        "):
            group.extend(line.split())
            continue
        stems = {stem(word) for word in group}
        for term in stems:
            by_term.setdefault(term, set()).update(stems - {term})
        group = line.split()
    return {term: frozenset(others) for term, others in by_term.items() if others}


#: Each term's synonyms, as terms (see ``_SYNONYM_GROUPS``).
SYNONYMS: dict[str, frozenset[str]] = _synonyms(_SYNONYM_GROUPS)
