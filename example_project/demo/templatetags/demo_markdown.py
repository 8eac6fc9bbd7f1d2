"""``{{ text|simple_markdown }}``: the knowledge base's small Markdown on the help pages.

The same subset the chat widget renders (paragraphs, lists, bold, italic,
links to https: and mailto:), built from escaped text: a help page shows an
answer the way Sophie does.
"""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_LINK = re.compile(r"\[([^\]\n]+)\]\(((?:https://|mailto:)[^()\s]+)\)")
_BOLD = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(\S(?:[^*]*?\S)?)\*(?!\w)")


def _inline(line: str) -> str:
    html = escape(line)
    # Escaping leaves [, ], (, ), * and URLs' characters alone, so the
    # patterns match the escaped text; the URL is escaped already.
    html = _LINK.sub(r'<a href="\2" rel="noopener noreferrer">\1</a>', html)
    html = _BOLD.sub(r"<strong>\1</strong>", html)
    return _ITALIC.sub(r"<em>\1</em>", html)


@register.filter
def simple_markdown(text: str) -> SafeString:
    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    list_tag = ""

    def flush() -> None:
        nonlocal list_tag
        if paragraph:
            blocks.append("<p>" + "<br>".join(paragraph) + "</p>")
            paragraph.clear()
        if items:
            blocks.append(f"<{list_tag}>" + "".join(items) + f"</{list_tag}>")
            items.clear()
            list_tag = ""

    for line in str(text).splitlines():
        bullet = _BULLET.match(line)
        numbered = None if bullet else _NUMBERED.match(line)
        if not line.strip():
            flush()
        elif bullet or numbered:
            tag = "ul" if bullet else "ol"
            if paragraph or (items and tag != list_tag):
                flush()
            list_tag = tag
            items.append("<li>" + _inline((bullet or numbered).group(1)) + "</li>")
        else:
            if items:
                flush()
            paragraph.append(_inline(line))
    flush()
    return mark_safe("".join(blocks))
