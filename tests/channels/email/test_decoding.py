"""Charsets and headers that mail clients get wrong, and the reply cutter, piece by piece."""

from __future__ import annotations

import base64

import pytest

from channels.email.decode import decode_bytes, decode_iso2022jp, decode_raw_header
from channels.email.quotes import REPLY_MARKER, strip_reply


@pytest.mark.parametrize(
    ("label", "encoding"),
    [("gb2312", "gbk"), ("GBK", "gbk"), ("x-gbk", "gbk"), ('"gb2312"', "gb18030")],
)
def test_chinese_labels_read_as_gb18030(label: str, encoding: str) -> None:
    assert decode_bytes("王喆在朱镕基路".encode(encoding), label) == "王喆在朱镕基路"


def test_korean_label_reads_as_cp949() -> None:
    # 똠 is in cp949 (Unified Hangul Code) but not in KS X 1001 proper.
    assert decode_bytes("똠방각하".encode("cp949"), "ks_c_5601-1987") == "똠방각하"


@pytest.mark.parametrize("label", ["base64", "rot13", "zlib", "unicode_escape", "no-such"])
def test_labels_that_are_not_charsets_fall_back_to_utf8(label: str) -> None:
    assert decode_bytes("naïve".encode(), label) == "naïve"


def test_iso_2022_jp_without_extensions_uses_the_standard_codec() -> None:
    assert decode_iso2022jp("こんにちは".encode("iso2022_jp")) == "こんにちは"


def test_an_encoded_word_split_inside_a_character_is_joined_first() -> None:
    data = "喆镕".encode("gbk")
    first, second = base64.b64encode(data[:3]).decode(), base64.b64encode(data[3:]).decode()
    header = f"=?gb2312?B?{first}?= =?gb2312?B?{second}?="
    assert decode_raw_header(header) == "喆镕"


def test_a_broken_encoded_word_costs_only_itself() -> None:
    assert decode_raw_header("=?utf-8?b?!!!?= hello") == "hello"
    assert decode_raw_header("=?utf-8?b?YWJj?= =?bogus?q?x=FFy?=") == "abcx\ufffdy"


def test_unencoded_text_between_encoded_words_keeps_its_characters() -> None:
    header = f"=?utf-8?B?{base64.b64encode('票'.encode()).decode()}?= 中文 ok"
    assert decode_raw_header(header) == "票 中文 ok"


def test_the_marker_cuts_in_any_language() -> None:
    text = f"Ja, bitte.\n\nAm Montag schrieb Support <s@example.com>:\n> {REPLY_MARKER}\n> Hallo"
    assert strip_reply(text) == "Ja, bitte."


def test_a_signature_after_the_dash_dash_space_line_goes() -> None:
    assert strip_reply("See the log below.\n\n-- \nAnn\n+44 20 7946 0000") == "See the log below."


def test_words_after_thanks_are_kept() -> None:
    text = "Hi,\n\nThanks, but it still fails. Error 42.\nPlease help.\n\nBest,\nAnn"
    assert strip_reply(text) == text


def test_a_mail_that_is_all_quote_is_kept_whole() -> None:
    assert strip_reply("> only a quote\n> of something") == "> only a quote\n> of something"


def test_lines_starting_with_a_dash_are_not_a_signature() -> None:
    assert strip_reply("Steps:\n- switched it off\n- unplugged it") == (
        "Steps:\n- switched it off\n- unplugged it"
    )
