"""Inbound frame validation and outbound frames, without a connection."""

import pytest

from sophie_chat import protocol
from sophie_chat.exceptions import EmptyMessage, InvalidJSON, InvalidMessage, MessageTooLong


def test_message_content_is_kept_as_sent_apart_from_control_characters():
    frame = protocol.parse_frame('{"type":"message","content":"<i>oi</i>\\u0000 & é"}')
    assert frame == protocol.UserMessage(content="<i>oi</i> & é")


def test_content_is_unicode_normalized_to_nfc():
    frame = protocol.parse_frame('{"type":"message","content":"cafe\\u0301"}')
    assert frame.content == "café"


def test_newlines_and_tabs_survive_cleaning():
    assert protocol.clean_text("a\r\nb\tc\x07") == "a\nb\tc"


def test_bytes_frames_are_read_as_utf8_json():
    assert protocol.parse_frame(None, b'{"type":"ping"}') == protocol.Ping()


def test_bytes_that_are_not_utf8_are_invalid_json():
    with pytest.raises(InvalidJSON):
        protocol.parse_frame(None, b"\xff\xfe")


def test_deeply_nested_json_is_invalid_json_not_a_crash():
    with pytest.raises((InvalidJSON, MessageTooLong)):
        protocol.parse_frame("[" * 50000 + "]" * 50000)


def test_bool_is_not_accepted_as_a_score():
    with pytest.raises(InvalidMessage):
        protocol.parse_frame('{"type":"session_rate","score":true}')


def test_empty_after_cleaning_is_empty_message():
    with pytest.raises(EmptyMessage):
        protocol.parse_frame('{"type":"message","content":"\\u0000\\u0001 "}')


def test_context_fields_are_bounded_and_typed():
    frame = protocol.parse_frame(
        '{"type":"session_init","context":{"page_url":"https://a.test/x","page_title":"T",'
        '"locale":"pt-BR","extra":{"plan":"gold"}}}'
    )
    assert frame.context == protocol.PageContext(
        page_url="https://a.test/x", page_title="T", locale="pt-BR", extra={"plan": "gold"}
    )
    with pytest.raises(InvalidMessage):
        protocol.parse_frame('{"type":"session_init","context":{"extra":[1]}}')


def test_error_frame_carries_code_message_and_optional_fields():
    error = MessageTooLong(reply_to="c1")
    assert protocol.error_frame(error) == {
        "type": "error",
        "code": "message_too_long",
        "message": "Your message is too long.",
        "reply_to": "c1",
    }
