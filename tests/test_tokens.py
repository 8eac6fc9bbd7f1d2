"""Token counting: the built-in estimate, tiktoken only from local files, a custom counter."""

import socket

import pytest

from sophie_chat import tokens


@pytest.fixture(autouse=True)
def _fresh_counter():
    tokens.reset()
    yield
    tokens.reset()


def test_estimate_is_the_default(settings):
    assert tokens.count_tokens("x" * 400) == 101


def words(text):
    return len(text.split())


def test_a_custom_counter_by_dotted_path(settings):
    settings.SOPHIE_CHAT = {**settings.SOPHIE_CHAT, "TOKEN_COUNTER": "tests.test_tokens.words"}

    assert tokens.count_tokens("one two three") == 3


def test_tiktoken_without_local_encodings_falls_back_without_downloading(
    settings, tmp_path, monkeypatch
):
    pytest.importorskip("tiktoken")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    connections = []

    def no_network(*args, **kwargs):
        connections.append(args)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    settings.SOPHIE_CHAT = {**settings.SOPHIE_CHAT, "TOKEN_COUNTER": "tiktoken"}

    assert tokens.count_tokens("x" * 400) == tokens.estimate_tokens("x" * 400)
    assert connections == []
    assert list(tmp_path.iterdir()) == []


def test_tiktoken_encoding_found_locally_is_used(settings, monkeypatch):
    tiktoken = pytest.importorskip("tiktoken")

    class Encoding:
        def encode_ordinary(self, text):
            return text.split()

    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: Encoding())
    settings.SOPHIE_CHAT = {**settings.SOPHIE_CHAT, "TOKEN_COUNTER": "tiktoken:o200k_base"}

    assert tokens.count_tokens("a b c d") == 4


def test_tiktoken_not_installed_falls_back(settings, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_tiktoken(name, *args, **kwargs):
        if name.startswith("tiktoken"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_tiktoken)
    settings.SOPHIE_CHAT = {**settings.SOPHIE_CHAT, "TOKEN_COUNTER": "tiktoken"}

    assert tokens.local_tiktoken_encoding("cl100k_base") is None
    assert tokens.count_tokens("abcd" * 10) == tokens.estimate_tokens("abcd" * 10)
