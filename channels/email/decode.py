"""Bytes and headers to text, whatever charset a mail claims — never a crash.

Mail clients label text with the charset they think they used, not the one they did:
"gb2312" mail carries GBK characters (喆, 镕), "big5" mail carries HKSCS characters, and
Windows clients write NEC/IBM extensions (①, Ⅱ) into ISO-2022-JP. So every label is read
as its superset, undecodable bytes become U+FFFD, and an unknown label falls back to
UTF-8. Headers are decoded one RFC 2047 chunk at a time with the same map; raw 8-bit
headers (no encoded words at all) are tried as UTF-8, then as the body's charset, then
as GB18030.
"""

from __future__ import annotations

import codecs
import re
from email.header import decode_header
from email.message import Message

# Declared label → the codec that decodes everything mail with that label really holds.
SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "euc-cn": "gb18030",
    "cp936": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "big-5": "big5hkscs",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    # WHATWG: browsers (and the mail clients that render like them) read both as cp1252.
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
}
_ISO_2022_JP = {"iso-2022-jp", "iso2022_jp", "csiso2022jp", "iso-2022-jp-ms", "iso-2022-jp-1"}
# Text codecs that are not character sets a mail may name.
_NOT_CHARSETS = {"unicode_escape", "raw_unicode_escape", "idna", "punycode"}
_CONTROLS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def codec_for(label: str | None) -> str | None:
    """The Python codec to read a declared charset with, or None if the label is bogus."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = SUPERSETS.get(name, name)
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    if not info._is_text_encoding or info.name.replace("-", "_") in _NOT_CHARSETS:
        return None  # "base64", "rot13", "zlib" … are codecs, not charsets
    return info.name


def decode_bytes(data: bytes, label: str | None) -> str:
    """Text from bytes in a declared charset: supersets for legacy labels, U+FFFD for
    bytes that do not decode, UTF-8 for a label nobody knows."""
    name = (label or "").strip().strip("\"'").lower()
    if name in _ISO_2022_JP:
        return decode_iso2022jp(data)
    codec = codec_for(name) or "utf-8"
    try:
        return data.decode(codec, errors="replace")
    except (LookupError, UnicodeError, ValueError, TypeError):
        return data.decode("utf-8", errors="replace")


def decode_iso2022jp(data: bytes) -> str:
    """ISO-2022-JP as Windows writes it. Python's iso2022_jp codecs refuse the NEC/IBM
    rows (① is JIS 0x2D21); mapping each JIS pair to Shift-JIS and decoding as cp932
    reads them, which is what Outlook and Thunderbird do too."""
    try:
        return data.decode("iso2022_jp")
    except UnicodeDecodeError:
        return jis_to_cp932(data).decode("cp932", errors="replace")


def jis_to_cp932(data: bytes) -> bytes:
    """Re-encode 7-bit JIS (escape-switched) as Shift-JIS bytes."""
    out = bytearray()
    mode = "ascii"  # ascii | kanji | kana
    i, n = 0, len(data)
    while i < n:
        byte = data[i]
        if byte == 0x1B and i + 2 < n:
            seq = data[i + 1 : i + 3]
            if seq in (b"$@", b"$B"):
                mode, i = "kanji", i + 3
                continue
            if seq in (b"(B", b"(J"):
                mode, i = "ascii", i + 3
                continue
            if seq == b"(I":
                mode, i = "kana", i + 3
                continue
        if byte in (0x0A, 0x0D):
            mode = "ascii" if mode == "kana" else mode
            out.append(byte)
            i += 1
        elif mode == "kanji" and i + 1 < n and 0x21 <= byte <= 0x7E and 0x21 <= data[i + 1] <= 0x7E:
            out += _jis_pair_to_sjis(byte, data[i + 1])
            i += 2
        elif mode == "kana" and 0x21 <= byte <= 0x5F:
            out.append(byte + 0x80)
            i += 1
        else:
            out.append(byte)
            i += 1
    return bytes(out)


def _jis_pair_to_sjis(j1: int, j2: int) -> bytes:
    s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
    # Odd JIS rows land in the lower half of the Shift-JIS trail range, skipping 0x7F.
    s2 = (j2 + 0x1F + (1 if j2 >= 0x60 else 0)) if j1 % 2 else j2 + 0x7E
    return bytes((s1, s2))


def clean_header_text(text: str) -> str:
    """One line, no control characters: a decoded `=0A` can never start a new header."""
    return " ".join(_CONTROLS.sub(" ", text).split())


def decode_raw_header(value: str, hint: str | None = None) -> str:
    """A header value as stored by a compat32 parse (8-bit bytes kept as surrogates),
    decoded chunk by chunk, unfolded and flattened to one line."""
    value = _FOLD.sub("", value)
    if _has_surrogates(value):
        value = decode_8bit(value.encode("ascii", "surrogateescape"), hint)
    if "=?" not in value:
        return clean_header_text(value)
    try:
        chunks = decode_header(value)
    except Exception:  # a broken encoded word: show it as it came rather than drop it
        return clean_header_text(value)
    parts = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
        elif charset is None:
            # decode_header hands unencoded runs back as raw-unicode-escape bytes.
            parts.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            parts.append(decode_bytes(chunk, charset))
    return clean_header_text("".join(parts))


def decode_8bit(data: bytes, hint: str | None = None) -> str:
    """Bytes with no declared charset (a raw 8-bit header): UTF-8 if they are valid
    UTF-8, else the charset the body declares, else GB18030 (the commonest case)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    codec = codec_for(hint)
    if codec is not None and codec not in ("utf-8", "ascii"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    return data.decode("gb18030", errors="replace")


def header_values(msg: Message, name: str, hint: str | None = None) -> list[str]:
    """Every occurrence of a header, top first, decoded."""
    wanted = name.lower()
    return [decode_raw_header(str(v), hint) for k, v in msg.raw_items() if k.lower() == wanted]


def header_value(msg: Message, name: str, hint: str | None = None) -> str | None:
    values = header_values(msg, name, hint)
    return values[0] if values else None


def raw_header_values(msg: Message, name: str) -> list[str]:
    """Every occurrence of a header, undecoded (for addresses and ids, which are ASCII)."""
    wanted = name.lower()
    return [_FOLD.sub("", str(value)) for key, value in msg.raw_items() if key.lower() == wanted]


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)
