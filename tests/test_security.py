"""Resume tokens and the client IP used for limits."""

from sophie_chat.security import client_ip, make_resume_token, session_id_from_token


def test_resume_token_round_trips_to_its_session():
    token = make_resume_token("4f1c")
    assert session_id_from_token(token) == "4f1c"


def test_tampered_or_foreign_tokens_are_rejected():
    from django.core import signing

    token = make_resume_token("4f1c")
    assert session_id_from_token(token + "x") is None
    assert session_id_from_token("garbage") is None
    other_salt = signing.dumps({"s": "4f1c"}, salt="another.salt")
    assert session_id_from_token(other_salt) is None


def scope(peer, forwarded=None):
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"client": (peer, 1234), "headers": headers}


def test_client_ip_is_the_peer_without_trusted_proxies():
    assert client_ip(scope("203.0.113.5", "198.51.100.1")) == "203.0.113.5"


def test_forwarded_address_is_used_only_behind_a_trusted_proxy(settings):
    settings.SOPHIE_CHAT = {**settings.SOPHIE_CHAT, "TRUSTED_PROXIES": ["10.0.0.0/8"]}
    assert client_ip(scope("10.0.0.2", "198.51.100.1")) == "198.51.100.1"
    assert client_ip(scope("203.0.113.5", "198.51.100.1")) == "203.0.113.5"


def test_spoofed_left_entries_are_ignored_behind_a_proxy(settings):
    settings.SOPHIE_CHAT = {**settings.SOPHIE_CHAT, "TRUSTED_PROXIES": ["10.0.0.0/8"]}
    # The client prepended a fake address; the proxy appended the real one.
    assert client_ip(scope("10.0.0.2", "1.2.3.4, 198.51.100.7, 10.0.0.3")) == "198.51.100.7"


def test_missing_client_is_none():
    assert client_ip({"headers": []}) is None


# -- redact: text from outside, fit for a log line (issue 16, finding 9) ---------------------


def test_redact_removes_given_secrets_and_what_looks_like_a_credential():
    from sophie_chat.security import redact

    text = (
        "failed: Authorization: Bearer abc.def.ghi api_key=XYZ123 "
        "key sk-proj-0123456789abcdef password: hunter2 my-own-secret-value"
    )
    cleaned = redact(text, "my-own-secret-value")
    for secret in ("abc.def.ghi", "XYZ123", "sk-proj-0123456789abcdef", "hunter2", "my-own-secret"):
        assert secret not in cleaned
    assert cleaned.startswith("failed:")


def test_redact_cuts_long_text():
    from sophie_chat.security import redact

    assert len(redact("x" * 5000)) <= 301
