"""One captured shape per test, through the adapter's pure `parse`: what an agent would
see of each mail (sender, subject, text, HTML, files) and what the hub must know (loop
headers, verified sender)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from channels.base import Ignored, InboundMessage, InboxSetup, RawInbound
from channels.email.adapter import EmailAdapter
from tests.channels.email.samples import gbk_multipart_email, sample


def adapter(**config: Any) -> EmailAdapter:
    settings = {"address": "support@example.com", "authserv_id": "mx.example.com", **config}
    return EmailAdapter(
        InboxSetup(
            id=1,
            key="default",
            kind="email",
            name="Support",
            config=settings,
            credentials={},
            public_url="http://hub.test",
        )
    )


def parsed(name: str, **config: Any) -> InboundMessage:
    [event] = adapter(**config).parse(RawInbound(headers={}, query={}, body=sample(name)))
    assert isinstance(event, InboundMessage)
    return event


def test_gmail_english_reply_loses_quote_and_signature_but_no_words() -> None:
    msg = parsed("gmail_en_reply")
    assert msg.sender_id == "ann.example@gmail.com"
    assert msg.sender_name == "Ann Example"
    assert msg.text == "Thanks, but it still smells of smoke. The model is X200."
    assert msg.subject == "Re: Printer is on fire [#C-17]"
    assert not msg.automatic
    assert msg.raw is not None
    assert msg.raw["reply_tokens"] == ["Yx3v9QmT0cR7kLp2WzN8fHs4uJ6aE1dB"]  # case kept
    assert msg.raw["in_reply_to"] == ["conv-3f1c2a9b8d7e6f504132.msg-41@example.com"]


def test_outlook_english_reply() -> None:
    msg = parsed("outlook_en_reply")
    assert msg.sender_id == "bob.builder@contoso.example"
    assert msg.text == "The amount is still wrong: we were charged twice.\n\nBob"
    assert msg.html is not None and "<style" not in msg.html


def test_chinese_outlook_reply_cut_at_fa_jian_ren() -> None:
    msg = parsed("outlook_zh_reply")
    assert msg.sender_name == "张三"
    assert msg.subject == "答复: 打印机故障"
    assert msg.text == "打印机还是不能用，显示错误代码 E-42。\n\n张三"


def test_chinese_gmail_reply_cut_at_xie_dao() -> None:
    msg = parsed("gmail_zh_reply")
    assert msg.sender_name == "李四"
    assert msg.text == "好的，我明天再试一下。谢谢！"


def test_gb2312_label_with_gbk_characters_decodes_as_gb18030() -> None:
    msg = parsed("gb2312_gbk_chars")
    assert msg.sender_name == "王喆"
    assert msg.subject == "发票抬头：朱镕基路"
    assert "王喆" in msg.text and "朱镕基路" in msg.text
    assert "\ufffd" not in msg.text


def test_big5_label_with_hkscs_characters() -> None:
    msg = parsed("big5_hkscs")
    assert msg.sender_name == "陳大文"
    assert msg.subject == "打印機唔啱用"
    assert msg.text == "你好，我喺香港，部打印機唔啱用，可唔可以幫手？"


def test_iso_2022_jp_with_windows_extensions() -> None:
    msg = parsed("iso2022jp_nec")
    assert msg.sender_name == "山田太郎"
    assert msg.subject == "①プリンターの件"
    assert "①の手順" in msg.text and "㈱サンプル" in msg.text


def test_a_bogus_charset_falls_back_to_utf8() -> None:
    msg = parsed("charset_bogus")
    assert msg.text == "Café au lait, s'il vous plaît — and the order number is 5521."


def test_invalid_bytes_become_replacement_characters_and_the_rest_survives() -> None:
    msg = parsed("invalid_bytes")
    assert msg.text.startswith("Order \ufffd")
    assert msg.text.endswith("arrived damaged, order 7781.")
    [attachment] = msg.files
    assert attachment.filename == "log.bin"  # its broken base64 cost nothing else


def test_raw_8bit_headers_are_decoded() -> None:
    msg = parsed("raw_8bit_header")
    assert msg.subject == "退款申请"  # raw UTF-8
    assert msg.sender_name == "赵六"  # raw GBK, like the body's charset
    assert msg.text == "请尽快处理退款。"


def test_hostile_html_is_inert_and_loads_nothing_remote() -> None:
    msg = parsed("html_hostile")
    html = msg.html
    assert html is not None
    lowered = html.lower()
    for banned in ("<script", "onerror", "onload", "javascript:", "<style", "<meta", "<xmp",
                   "<iframe", "<form", "<svg", "position", "url("):  # fmt: skip
        assert banned not in lowered, banned
    assert "evil.example/pixel.gif" not in html  # no tracking pixel
    assert '<a href="https://evil.example/ok" rel="noopener noreferrer nofollow">' in html
    assert "&lt;script&gt;alert('xmp')&lt;/script&gt;" in html  # shown, not run
    assert msg.text.startswith("Please reset my password.")
    assert "fetch(" not in msg.text  # script bodies are not text either


def test_auto_reply_is_automatic() -> None:
    msg = parsed("auto_replied")
    assert msg.automatic
    assert msg.raw is not None
    assert "Auto-Submitted: auto-replied" in msg.raw["automatic"]


def test_precedence_bulk_is_automatic() -> None:
    assert parsed("precedence_bulk").automatic


def test_x_loop_is_automatic() -> None:
    assert parsed("x_loop").automatic


def test_a_delivery_report_is_automatic_and_names_the_bounced_mail() -> None:
    msg = parsed("dsn_bounce")
    assert msg.automatic
    assert msg.sender_id == "mailer-daemon@mx.example.com"
    assert "550 5.1.1 User unknown" in msg.text
    assert msg.raw is not None and msg.raw["bounce"]
    assert msg.raw["bounced_message_ids"] == ["conv-0a1b2c3d4e5f6a7b8c9d.msg-90@example.com"]


def test_an_empty_return_path_is_automatic() -> None:
    msg = parsed("empty_return_path")
    assert msg.automatic
    assert msg.raw is not None and msg.raw["bounce"]


def test_attachments_and_inline_images_become_files() -> None:
    msg = parsed("attachment_inline")
    assert msg.text == "Here is the error I see, and the receipt."
    assert [(f.filename, f.content_type) for f in msg.files] == [
        ("screenshot.png", "image/png"),
        ("Quittung März.pdf", "application/pdf"),
    ]
    assert all(f.data and f.size == len(f.data) for f in msg.files)
    assert msg.html is not None and 'src="cid:screenshot@frank"' in msg.html


def test_an_encoded_newline_in_the_subject_is_flattened() -> None:
    msg = parsed("subject_newline")
    assert msg.subject == "Invoice question Bcc: victim@example.net X-Injected: yes"
    assert msg.subject is not None and "\n" not in msg.subject and "\r" not in msg.subject


def test_a_forged_authentication_results_below_the_real_one_verifies_nothing() -> None:
    msg = parsed("forged_auth_results")
    assert msg.verified_email is None
    # The verdict we went by stays with the message, for whoever audits it.
    assert msg.raw is not None
    assert "dmarc=fail" in msg.raw["authentication_results"]


def test_our_mtas_dmarc_pass_verifies_the_sender() -> None:
    assert parsed("dmarc_pass").verified_email == "ceo@bank.example"


@pytest.mark.parametrize("authserv_id", ["", "mx.other.example"])
def test_a_dmarc_pass_from_an_mta_we_do_not_trust_verifies_nothing(authserv_id: str) -> None:
    assert parsed("dmarc_pass", authserv_id=authserv_id).verified_email is None


def test_mail_from_our_own_address_is_ignored_and_audited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eml = sample("auto_replied").replace(
        b"From: Erin <erin@example.org>", b"From: support@example.com"
    )
    with caplog.at_level(logging.WARNING, logger="switchboard.audit"):
        [event] = adapter().parse(RawInbound(headers={}, query={}, body=eml))
    assert isinstance(event, Ignored)
    [record] = [r for r in caplog.records if r.name == "switchboard.audit"]
    assert "support@example.com" in record.getMessage()


def test_a_dmarc_failure_is_audited_and_verifies_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="switchboard.audit"):
        msg = parsed("forged_auth_results")
    assert msg.verified_email is None
    [record] = [r for r in caplog.records if r.name == "switchboard.audit"]
    assert "ceo@bank.example" in record.getMessage() and "DMARC" in record.getMessage()


def test_the_dedupe_key_is_the_message_id_or_a_digest() -> None:
    email = adapter()
    raw = RawInbound(headers={}, query={}, body=sample("auto_replied"))
    assert email.delivery(raw).dedupe_key == "msgid:ooo-1@example.org"
    no_id = sample("auto_replied").replace(b"Message-ID: <ooo-1@example.org>\r\n", b"")
    key = email.delivery(RawInbound(headers={}, query={}, body=no_id)).dedupe_key
    assert key.startswith("sha256:") and len(key) == len("sha256:") + 64
    [event] = email.parse(RawInbound(headers={}, query={}, body=no_id))
    assert isinstance(event, InboundMessage) and event.external_id == key


def test_the_benchmark_mail_is_a_50_kb_multipart_gbk_mail() -> None:
    raw = gbk_multipart_email()
    assert 45_000 < len(raw) < 60_000
    [event] = adapter().parse(RawInbound(headers={}, query={}, body=raw))
    assert isinstance(event, InboundMessage)
    assert event.sender_name == "王喆"
    assert "朱镕基路" in event.text and "发件人" not in event.text
    assert [f.filename for f in event.files] == ["维修单.pdf"]


def test_a_huge_html_only_mail_is_cut_for_reading_and_kept_whole_as_a_file() -> None:
    paragraph = "<p>" + "order status please " * 40 + "</p>\n"
    html = "<html><body>" + paragraph * 2000 + "</body></html>"  # ~1.6 MB
    eml = (
        "From: ann@example.org\r\nTo: support@example.com\r\nSubject: big\r\n"
        "Message-ID: <big-html@example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n" + html
    ).encode()
    [event] = adapter().parse(RawInbound(headers={}, query={}, body=eml))
    assert isinstance(event, InboundMessage)
    assert "order status please" in event.text
    assert "message.html" in event.text
    [original] = [f for f in event.files if f.filename == "message.html"]
    assert original.data is not None and len(original.data) >= len(html.encode()) - 100


def test_authentication_results_brought_through_our_own_ingress_verify_nothing() -> None:
    # The embedded SMTP ingress writes no Authentication-Results of its own, so a
    # "dmarc=pass" in such a mail was written by whoever sent it.
    raw = RawInbound(headers={"x-received-via": "smtp"}, query={}, body=sample("dmarc_pass"))
    [event] = adapter().parse(raw)
    assert isinstance(event, InboundMessage)
    assert event.verified_email is None
    # The same mail fetched from a mailbox our MTA delivered to is verified.
    fetched = RawInbound(headers={"x-received-via": "imap"}, query={}, body=sample("dmarc_pass"))
    [event] = adapter().parse(fetched)
    assert isinstance(event, InboundMessage) and event.verified_email == "ceo@bank.example"
