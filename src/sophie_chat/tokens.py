"""Counting tokens, for the prompt budget and the daily token budget.

``SOPHIE_CHAT["TOKEN_COUNTER"]`` chooses how:

``"estimate"`` (the default)
    About four characters a token, no dependency. It overestimates a
    little for English and underestimates a little for Portuguese; budgets
    built on it should keep some headroom.
``"tiktoken"`` or ``"tiktoken:<encoding>"``
    OpenAI's tokenizer (``pip install "sophie-chat[tiktoken]"``), with the
    encoding ``cl100k_base`` or the one named. Only encodings already on
    disk are used (``TIKTOKEN_CACHE_DIR``, or tiktoken's own cache
    folder): nothing is ever downloaded at run time. When tiktoken or the
    encoding file is missing, the estimate is used, and ``manage.py check``
    says so (``sophie_chat.W016``).
a dotted path
    To a function ``(text: str) -> int`` of your own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import cache

from django.utils.module_loading import import_string

from sophie_chat import conf

logger = logging.getLogger(__name__)

DEFAULT_ENCODING = "cl100k_base"
# Per chat message, on top of its text: the role and the separators.
MESSAGE_OVERHEAD = 4


def estimate_tokens(text: str) -> int:
    """A cheap, dependency-free token estimate (about 4 characters a token)."""
    return len(text) // 4 + 1


_tiktoken_lock = threading.Lock()


class _DownloadRefused(Exception):
    pass


def _refuse_download(blobpath: str) -> bytes:
    raise _DownloadRefused(blobpath)


def local_tiktoken_encoding(name: str) -> object | None:
    """The tiktoken encoding ``name`` if tiktoken is installed and its file is on disk.

    Never downloads: while the encoding loads, tiktoken's download function
    is replaced by one that refuses, so an encoding missing from tiktoken's
    cache folder (``TIKTOKEN_CACHE_DIR``) gives None instead of a request.
    """
    try:
        import tiktoken
        import tiktoken.load
    except ImportError:
        return None
    with _tiktoken_lock:
        original = tiktoken.load.read_file
        tiktoken.load.read_file = _refuse_download
        try:
            return tiktoken.get_encoding(name)
        except _DownloadRefused:
            return None
        except Exception:  # an unknown name or a corrupt file must not break answers
            logger.warning("tiktoken encoding %s could not be loaded", name, exc_info=True)
            return None
        finally:
            tiktoken.load.read_file = original


@cache
def _counter(setting: str) -> Callable[[str], int]:
    if setting in ("", "estimate"):
        return estimate_tokens
    if setting == "tiktoken" or setting.startswith("tiktoken:"):
        name = setting.partition(":")[2] or DEFAULT_ENCODING
        encoding = local_tiktoken_encoding(name)
        if encoding is None:
            logger.warning(
                "TOKEN_COUNTER %r: tiktoken or its %s encoding is not available locally; "
                "using the built-in estimate",
                setting,
                name,
            )
            return estimate_tokens
        encode = encoding.encode_ordinary  # type: ignore[attr-defined]
        return lambda text: len(encode(text))
    return import_string(setting)


def counter() -> Callable[[str], int]:
    """The configured token counter: a function ``(text) -> int``."""
    return _counter(str(conf.get("TOKEN_COUNTER") or "estimate"))


def count_tokens(text: str) -> int:
    """Tokens in ``text`` by the configured counter."""
    return int(counter()(text))


def reset() -> None:
    """Forget the loaded counter (settings changed)."""
    _counter.cache_clear()
