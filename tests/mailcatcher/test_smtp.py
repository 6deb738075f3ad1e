"""Real SMTP sessions (smtplib) against the real server, read back over the API."""

from __future__ import annotations

import smtplib
from concurrent.futures import ThreadPoolExecutor
from email.policy import SMTP

import pytest
import requests

from tests.mailcatcher.helpers import eml, send, simple_message


def listed(server) -> list[dict]:
    return requests.get(f"{server.url}/messages", timeout=10).json()


def get(server, path: str) -> requests.Response:
    return requests.get(f"{server.url}{path}", timeout=10)


def test_plain_message_is_caught(mailcatcher):
    send(
        mailcatcher.smtp_port,
        simple_message("Plain", "Just text."),
        "a@example.com",
        ["b@example.com"],
    )

    [message] = listed(mailcatcher)
    assert message["subject"] == "Plain"
    assert message["sender"] == "<a@example.com>"
    assert message["recipients"] == ["<b@example.com>"]
    assert get(mailcatcher, f"/messages/{message['id']}.plain").text.strip() == "Just text."


def test_utf8_headers_and_smtputf8_addresses(mailcatcher):
    message = simple_message(
        "Grüße aus Köln ✉", "Schöne Grüße.", From="jörg@exämple.de", To="zoë@exämple.de"
    )
    with smtplib.SMTP("127.0.0.1", mailcatcher.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("smtputf8")
        assert smtp.has_extn("8bitmime")
        smtp.send_message(message)  # smtplib adds SMTPUTF8 for the non-ASCII addresses

    [caught] = listed(mailcatcher)
    assert caught["subject"] == "Grüße aus Köln ✉"
    assert caught["sender"] == "<jörg@exämple.de>"
    assert caught["recipients"] == ["<zoë@exämple.de>"]
    assert get(mailcatcher, f"/messages/{caught['id']}.plain").text.strip() == "Schöne Grüße."


def test_8bit_body_with_a_legacy_charset(mailcatcher):
    source = (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: latin-1\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9 cr\xe8me\r\n"
    )
    with smtplib.SMTP("127.0.0.1", mailcatcher.smtp_port, timeout=10) as smtp:
        smtp.sendmail("a@example.com", ["b@example.com"], source, mail_options=["BODY=8BITMIME"])

    [caught] = listed(mailcatcher)
    plain = get(mailcatcher, f"/messages/{caught['id']}.plain")
    assert plain.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert plain.text.strip() == "Café crème"
    assert get(mailcatcher, f"/messages/{caught['id']}.eml").content == source


def test_multipart_with_inline_image_and_attachment(mailcatcher):
    send(
        mailcatcher.smtp_port,
        eml("inline_gif.eml"),
        "noreply@work-it.test",
        ["learner@example.com"],
    )

    [caught] = listed(mailcatcher)
    details = get(mailcatcher, f"/messages/{caught['id']}.json").json()
    assert details["type"] == "multipart/mixed"
    assert details["formats"] == ["source", "html", "plain"]
    [gif] = details["attachments"]
    assert gif["cid"] == "work-it-gif@work-it.test"
    assert gif["filename"] == "party.gif"
    image = get(mailcatcher, gif["href"])
    assert image.headers["Content-Type"] == "image/gif"
    assert image.content.startswith(b"GIF89a")


def test_any_auth_credentials_are_accepted(mailcatcher):
    with smtplib.SMTP("127.0.0.1", mailcatcher.smtp_port, timeout=10) as smtp:
        smtp.login("anyone", "any password")
        smtp.send_message(simple_message("After login"))

    assert [m["subject"] for m in listed(mailcatcher)] == ["After login"]


@pytest.mark.parametrize(
    "fixture",
    [
        "malformed.eml",
        "broken_boundary.eml",
        "unknown_content_type.eml",
        "header_crlf.eml",
        "empty_message_id.eml",
        "hostile_script.eml",
    ],
)
def test_malformed_mime_is_kept_with_its_raw_source(mailcatcher, fixture):
    source = eml(fixture)
    send(mailcatcher.smtp_port, source)

    [caught] = listed(mailcatcher)
    assert get(mailcatcher, f"/messages/{caught['id']}.source").content == source
    assert get(mailcatcher, f"/messages/{caught['id']}.json").status_code == 200
    send(mailcatcher.smtp_port, simple_message("still alive"))  # the server survived
    assert len(listed(mailcatcher)) == 2


def test_broken_boundary_still_shows_the_text(mailcatcher):
    send(mailcatcher.smtp_port, eml("broken_boundary.eml"))

    [caught] = listed(mailcatcher)
    assert (
        "Text that should still be shown."
        in get(mailcatcher, f"/messages/{caught['id']}.plain").text
    )


@pytest.fixture
def small_limit(start_mailcatcher):
    return start_mailcatcher("--max-message-size", "2000")


def test_oversized_message_declared_with_size_gets_552(small_limit):
    big = simple_message("big", ("x" * 70 + "\n") * 80)
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        send(small_limit.smtp_port, big)

    assert refused.value.smtp_code == 552
    assert listed(small_limit) == []


def test_oversized_message_without_size_gets_552_after_data(small_limit):
    with smtplib.SMTP("127.0.0.1", small_limit.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.mail("a@example.com")[0] == 250  # no SIZE= parameter
        assert smtp.rcpt("b@example.com")[0] == 250
        code, reply = smtp.data(simple_message("big", ("x" * 70 + "\n") * 80).as_bytes(policy=SMTP))
        assert (code, reply) == (552, b"Error: Too much mail data")
        smtp.sendmail(
            "a@example.com", ["b@example.com"], simple_message("small").as_bytes(policy=SMTP)
        )

    assert [m["subject"] for m in listed(small_limit)] == ["small"]


def test_many_concurrent_senders(mailcatcher):
    def sender(n: int) -> None:
        with smtplib.SMTP("127.0.0.1", mailcatcher.smtp_port, timeout=30) as smtp:
            for i in range(5):
                smtp.send_message(simple_message(f"sender {n} message {i}"))

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(sender, range(20)))

    subjects = {m["subject"] for m in listed(mailcatcher)}
    assert subjects == {f"sender {n} message {i}" for n in range(20) for i in range(5)}


def test_large_message_is_parsed_off_the_event_loop_and_kept(mailcatcher):
    payload = bytes(range(256)) * 6000  # 1.5 MB, above PARSE_IN_THREAD_ABOVE once encoded
    message = simple_message("big attachment")
    message.add_attachment(payload, maintype="application", subtype="zip", filename="big.zip")
    send(mailcatcher.smtp_port, message)

    [caught] = listed(mailcatcher)
    [attachment] = get(mailcatcher, f"/messages/{caught['id']}.json").json()["attachments"]
    assert attachment["size"] == len(payload)
    assert get(mailcatcher, attachment["href"]).content == payload


# -- mail aiosmtpd refuses by default and MailCatcher and Mailpit accept -------------


def test_bare_lf_mail_from_smtplib_bytes_is_caught_whole(mailcatcher):
    """smtplib.sendmail(..., msg.as_bytes()) sends bare LF line endings as they are."""
    lines = [f"line {n}: {'x' * 60}" for n in range(40)]
    body = "\n".join([*lines[:20], ".a line that starts with a dot", *lines[20:]])
    message = simple_message("Bare LF", body).as_bytes()
    assert b"\r\n" not in message and len(message) > 2000

    send(mailcatcher.smtp_port, message)

    [caught] = listed(mailcatcher)
    assert caught["subject"] == "Bare LF"
    plain = get(mailcatcher, f"/messages/{caught['id']}.plain").text
    assert "\n.a line that starts with a dot\n" in plain  # unstuffed, not "..a line"
    assert all(f"line {n}: " in plain for n in range(40))
    source = get(mailcatcher, f"/messages/{caught['id']}.eml").content
    # as sent, once smtplib's CRLF before the final dot is taken off
    assert source.replace(b"\r\n", b"\n").rstrip(b"\n") == message.rstrip(b"\n")


def test_an_html_line_of_5000_characters_and_a_header_of_5000_are_caught(mailcatcher):
    html_line = "<p>" + "long " * 999 + "</p>"
    header = "X-Long: " + "h" * 5000
    raw = "\r\n".join(
        [
            "From: a@example.com",
            "To: b@example.com",
            "Subject: Long lines",
            header,
            "MIME-Version: 1.0",
            "Content-Type: text/html; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "",
            html_line,
            "",
        ]
    ).encode()

    send(mailcatcher.smtp_port, raw)

    [caught] = listed(mailcatcher)
    assert caught["subject"] == "Long lines"
    assert html_line in get(mailcatcher, f"/messages/{caught['id']}.html").text
    assert header.encode() in get(mailcatcher, f"/messages/{caught['id']}.eml").content


def test_a_message_over_the_size_limit_is_still_refused(start_mailcatcher):
    """Lines of any length, but not past --max-message-size (552 after DATA, when the
    client did not declare SIZE)."""
    server = start_mailcatcher("--max-message-size", "10000")
    one_line = b"Subject: Big\r\n\r\n" + b"y" * 15000
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("a@example.com")  # no SIZE=, so only DATA can tell
        smtp.rcpt("b@example.com")
        code, _ = smtp.data(one_line)
    assert code == 552
    assert listed(server) == []


def test_a_second_mail_from_without_rset_starts_a_new_message(mailcatcher):
    with smtplib.SMTP("127.0.0.1", mailcatcher.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.mail("first@example.com")[0] == 250
        assert smtp.rcpt("b@example.com")[0] == 250
        assert smtp.mail("second@example.com")[0] == 250  # aiosmtpd: 503 nested MAIL
        assert smtp.rcpt("c@example.com")[0] == 250
        assert smtp.data(simple_message("Second", "hi").as_bytes())[0] == 250

    [caught] = listed(mailcatcher)
    assert (caught["sender"], caught["recipients"]) == ("<second@example.com>", ["<c@example.com>"])
