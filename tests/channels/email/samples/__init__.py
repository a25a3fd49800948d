"""Captured-shape email samples (`*.eml`, CRLF line ends, one per shape) and a generator
for a large GBK mail that the parse benchmark (bench/channels.py) times.

The samples reproduce what the named clients send: header order, boundaries, encodings
and quoting styles. Addresses and ids are invented.
"""

from __future__ import annotations

import base64
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent


def sample(name: str) -> bytes:
    """The bytes of `samples/<name>.eml`."""
    return (SAMPLES / f"{name}.eml").read_bytes()


_PARAGRAPH = (
    "您好，我们公司上个月订购的打印机（型号 X200）出现了卡纸问题，王喆和朱镕基路仓库的同事"
    "都反映过。请帮忙安排维修，并确认保修期限。发票抬头：上海示例贸易有限公司。\n"
)
_HTML_PARAGRAPH = f"<p>{_PARAGRAPH.strip()}</p>\n"


def _b64_lines(data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _encoded_word(text: str) -> str:
    return f"=?gb2312?B?{base64.b64encode(text.encode('gbk')).decode('ascii')}?="


def gbk_multipart_email(size: int = 50 * 1024, n: int = 0) -> bytes:
    """A `gb2312`-labelled multipart/mixed mail of about `size` bytes, as Chinese
    Outlook writes it: plain and HTML alternatives (base64, GBK-only characters inside),
    a quoted earlier message, and a small attachment. `n` varies the Message-ID."""
    attachment = b"%PDF-1.4\n" + b"0" * 2048 + b"\n%%EOF\n"
    quote = (
        "\n发件人: Support <support@example.com>\n发送时间: 2025年1月6日 10:30\n"
        "收件人: 王喆 <wangzhe@example.cn>\n主题: 回复: 打印机卡纸\n\n请提供序列号。\n"
    )
    # Each paragraph appears in both alternatives (base64: 4/3 of its GBK size).
    per_paragraph = (
        len(_PARAGRAPH.encode("gbk")) * 4 // 3 + len(_HTML_PARAGRAPH.encode("gbk")) * 4 // 3
    )
    budget = size - len(attachment) * 4 // 3 - 1500
    count = max(1, budget // per_paragraph)
    plain = (_PARAGRAPH * count + quote).replace("\n", "\r\n").encode("gbk")
    html = ("<html><body>" + _HTML_PARAGRAPH * count + "</body></html>").encode("gbk")
    head = "\r\n".join(
        [
            f"From: {_encoded_word('王喆')} <wangzhe@example.cn>",
            "To: support@example.com",
            f"Subject: {_encoded_word('答复: 打印机卡纸（朱镕基路仓库）')}",
            "Date: Tue, 7 Jan 2025 08:00:00 +0800",
            f"Message-ID: <gbk-bench-{n}@example.cn>",
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="----=_NextPart_000_0001"',
            "X-Mailer: Microsoft Outlook 16.0",
        ]
    )
    body = "\r\n".join(
        [
            "------=_NextPart_000_0001",
            'Content-Type: multipart/alternative; boundary="----=_NextPart_001_0002"',
            "",
            "------=_NextPart_001_0002",
            'Content-Type: text/plain; charset="gb2312"',
            "Content-Transfer-Encoding: base64",
            "",
            _b64_lines(plain),
            "",
            "------=_NextPart_001_0002",
            'Content-Type: text/html; charset="gb2312"',
            "Content-Transfer-Encoding: base64",
            "",
            _b64_lines(html),
            "",
            "------=_NextPart_001_0002--",
            "",
            "------=_NextPart_000_0001",
            f'Content-Type: application/pdf; name="{_encoded_word("维修单.pdf")}"',
            "Content-Transfer-Encoding: base64",
            f'Content-Disposition: attachment; filename="{_encoded_word("维修单.pdf")}"',
            "",
            _b64_lines(attachment),
            "",
            "------=_NextPart_000_0001--",
            "",
        ]
    )
    return f"{head}\r\n\r\n{body}".encode("ascii")
