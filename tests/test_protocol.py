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


# -- issue 16: every text field is validated at the boundary ---------------------------


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"message","content":"Hello","client_message_id":"a\\u0000b"}',
        '{"type":"message","content":"Hello","client_message_id":"\\ud800"}',
        '{"type":"feedback","message_id":"\\u0000","rating":"up"}',
        '{"type":"feedback","message_id":"\\udc00","rating":"up"}',
        '{"type":"session_init","session_id":"\\u0000"}',
        '{"type":"session_init","resume_token":"x\\ud800"}',
        '{"type":"feedback","message_id":"' + "m" * 65 + '","rating":"up"}',
        '{"type":"session_init","resume_token":"' + "t" * 257 + '"}',
    ],
)
def test_nul_surrogate_or_oversize_id_is_invalid_message(frame):
    with pytest.raises(InvalidMessage):
        protocol.parse_frame(frame)


def test_unknown_type_with_a_lone_surrogate_is_invalid_message_that_encodes():
    with pytest.raises(InvalidMessage) as raised:
        protocol.parse_frame('{"type":"\\ud800x"}')
    protocol.encode(protocol.error_frame(raised.value)).encode("utf-8")


def test_context_text_and_extra_are_cleaned_of_nul_and_surrogates():
    frame = protocol.parse_frame(
        '{"type":"session_init","context":{"page_title":"a\\ud800b",'
        '"extra":{"k\\u0000":["v\\ud800",{"n":"\\u0000x"}],"n":1}}}'
    )
    assert frame.context.page_title == "ab"
    assert frame.context.extra == {"k": ["v", {"n": "x"}], "n": 1}


def test_context_extra_nested_too_deep_is_invalid_message():
    nested = '{"a":' * 20 + "1" + "}" * 20
    with pytest.raises(InvalidMessage):
        protocol.parse_frame('{"type":"session_init","context":{"extra":' + nested + "}}")


def test_encode_escapes_a_lone_surrogate_instead_of_failing():
    text = protocol.encode({"type": "stream_delta", "delta": "a\ud800"})
    text.encode("utf-8")
    assert text == '{"type":"stream_delta","delta":"a\\ud800"}'
