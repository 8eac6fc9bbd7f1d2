"""The widget's Markdown subset, rendered by its own ``renderMarkdown`` in Chromium.

Each case is the HTML the browser serializes from the DOM nodes the widget
built; text that is not Markdown must come out as text (escaped when
serialized), never as elements.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

CASES = {
    "plain text is a paragraph": ("Hello there.", "<p>Hello there.</p>"),
    "single newlines are line breaks": ("one\ntwo", "<p>one<br>two</p>"),
    "blank lines separate paragraphs": ("one\n\ntwo", "<p>one</p><p>two</p>"),
    "bold": ("a **strong** word", "<p>a <strong>strong</strong> word</p>"),
    "bold with underscores": ("a __strong__ word", "<p>a <strong>strong</strong> word</p>"),
    "italic": ("an *emphasised* word", "<p>an <em>emphasised</em> word</p>"),
    "italic with underscores": ("an _emphasised_ word", "<p>an <em>emphasised</em> word</p>"),
    "underscores inside words stay": ("snake_case_name", "<p>snake_case_name</p>"),
    "lone asterisks stay": ("2 * 3 * 4", "<p>2 * 3 * 4</p>"),
    "bold inside a list item": (
        "- **Pix**\n- card",
        "<ul><li><strong>Pix</strong></li><li>card</li></ul>",
    ),
    "bulleted list": ("- one\n- two\n* three", "<ul><li>one</li><li>two</li><li>three</li></ul>"),
    "numbered list": ("1. one\n2. two", "<ol><li>one</li><li>two</li></ol>"),
    "numbered list keeps its start": (
        "3. three\n4. four",
        '<ol start="3"><li>three</li><li>four</li></ol>',
    ),
    "list after a paragraph": ("We accept:\n- Pix", "<p>We accept:</p><ul><li>Pix</li></ul>"),
    "inline code": ("run `make demo` now", "<p>run <code>make demo</code> now</p>"),
    "no markdown inside code": ("`**not bold**`", "<p><code>**not bold**</code></p>"),
    "code block": ("```\n<b>x</b>\n```", "<pre><code>&lt;b&gt;x&lt;/b&gt;</code></pre>"),
    "heading becomes a bold line": (
        "### Prices",
        '<p class="md-heading"><strong>Prices</strong></p>',
    ),
    "https link": (
        "[our page](https://example.com/a?b=1&c=2)",
        '<p><a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer" '
        'target="_blank">our page</a></p>',
    ),
    "mailto link opens in place": (
        "[write](mailto:help@example.com)",
        '<p><a href="mailto:help@example.com" rel="noopener noreferrer">write</a></p>',
    ),
    "bare https URL becomes a link without its full stop": (
        "See https://example.com/x.",
        '<p>See <a href="https://example.com/x" rel="noopener noreferrer" '
        'target="_blank">https://example.com/x</a>.</p>',
    ),
    "javascript link keeps only its words": ("[click](javascript:alert(1))", "<p>click</p>"),
    "javascript link in disguise keeps only its words": (
        "[click](java%0ascript:alert(1))",
        "<p>click</p>",
    ),
    "data link keeps only its words": ("[x](data:text/html,hi)", "<p>x</p>"),
    "http link keeps only its words": ("[x](http://example.com)", "<p>x</p>"),
    "relative link keeps only its words": ("[x](/admin/)", "<p>x</p>"),
    "bare http URL stays text": ("see http://example.com", "<p>see http://example.com</p>"),
    "html is text": (
        '<img src=x onerror="alert(1)"><script>alert(2)</script>',
        '<p>&lt;img src=x onerror="alert(1)"&gt;&lt;script&gt;alert(2)&lt;/script&gt;</p>',
    ),
    "html inside bold is text": ("**<i>x</i>**", "<p><strong>&lt;i&gt;x&lt;/i&gt;</strong></p>"),
    "html in a link label is text": (
        "[<b>x</b>](https://example.com)",
        '<p><a href="https://example.com/" rel="noopener noreferrer" '
        'target="_blank">&lt;b&gt;x&lt;/b&gt;</a></p>',
    ),
    "unfinished markdown while streaming stays text": ("a **bol", "<p>a **bol</p>"),
    # Issue 16: bidi controls would show "exe.pdf" as "fdp.exe".
    "bidi override is dropped": ("invoice\u202efdp.exe", "<p>invoicefdp.exe</p>"),
    "bidi isolates are dropped": ("a\u2067b\u2069c\u202ad\u202c", "<p>abcd</p>"),
    "bidi override in a link label is dropped": (
        "[\u202egpj.exe](https://example.com)",
        '<p><a href="https://example.com/" rel="noopener noreferrer" '
        'target="_blank">gpj.exe</a></p>',
    ),
}


@pytest.fixture(scope="module")
def render_page(chromium, demo):
    context = chromium.new_context()
    page = context.new_page()
    page.goto(f"{demo.url}/help/")
    yield page
    context.close()


def render(page, text: str) -> str:
    return page.evaluate(
        """async (text) => {
            const { renderMarkdown } = await import("/static/sophie_chat/widget.js");
            const box = document.createElement("div");
            box.append(renderMarkdown(text));
            return box.innerHTML;
        }""",
        text,
    )


@pytest.mark.parametrize(("text", "html"), CASES.values(), ids=CASES.keys())
def test_markdown_subset(render_page, text, html):
    assert render(render_page, text) == html


def test_links_opening_a_new_tab_say_so_to_screen_readers(render_page):
    html = render_page.evaluate(
        """async () => {
            const { renderMarkdown } = await import("/static/sophie_chat/widget.js");
            const box = document.createElement("div");
            const text = "[a](https://example.com) [b](mailto:b@example.com)";
            box.append(renderMarkdown(text, { newTabLabel: "(opens in a new tab)" }));
            return box.innerHTML;
        }"""
    )
    assert html == (
        '<p><a href="https://example.com/" rel="noopener noreferrer" target="_blank">a'
        '<span class="sr-only"> (opens in a new tab)</span></a> '
        '<a href="mailto:b@example.com" rel="noopener noreferrer">b</a></p>'
    )
