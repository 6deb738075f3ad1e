"""Mail built to be slow to read must cost about what plain mail of its size costs:
the sink runs SMTP and the inbox on one event loop, so one slow message stalls both.

Each test times the hostile message against a plain one of the same size and shape,
on the same server, and asserts that it takes under ten times as long: each side by
its best run, the two in turn, for up to ten rounds (tests/timing.py), so that a
busy machine's noise cannot decide it. Quadratic code fails these by hundreds of
times (3 to 4 s a run against 5 to 40 ms) and has no fast run to show.
"""

from __future__ import annotations

from collections.abc import Callable
from email.header import Header, decode_header, make_header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
import requests

from mailcatcher.mime import clean_text, parse
from tests.mailcatcher.helpers import send
from tests.timing import assert_as_fast_as


def html_parts(body: str, count: int) -> bytes:
    message = MIMEMultipart("mixed")
    message["Subject"] = "parts"
    for _ in range(count):
        message.attach(MIMEText(body, "html", "utf-8"))
    return message.as_bytes()


def send_and_list(server, source: bytes) -> Callable[[], object]:
    """Send, then list the inbox: the list waits for the loop, so it shows the stall."""

    def action() -> None:
        requests.delete(f"{server.url}/messages", timeout=60).raise_for_status()
        send(server.smtp_port, source)
        assert len(requests.get(f"{server.url}/messages", timeout=120).json()) == 1

    return action


def test_html_parts_full_of_open_brackets_are_stored_as_fast_as_plain_ones(mailcatcher):
    """Issue 21: eight 64 KiB text/html parts of "<" froze the sink for 30 s."""
    hostile = html_parts("<" * 65536, 8)
    plain = html_parts("x" * 65536, 8)

    assert_as_fast_as(send_and_list(mailcatcher, hostile), send_and_list(mailcatcher, plain))


def test_unclosed_tags_in_html_are_still_left_out_of_the_search(mailcatcher):
    send(mailcatcher.smtp_port, html_parts("<<b>findme</b> <i>and me <", 1))
    found = requests.get(f"{mailcatcher.url}/messages", params={"q": "findme"}, timeout=10)
    assert len(found.json()) == 1
    tag = requests.get(f"{mailcatcher.url}/messages", params={"q": "<b>"}, timeout=10)
    assert tag.json() == []


def test_a_huge_parameter_header_is_stored_as_fast_as_a_plain_header(mailcatcher):
    """The email package parses parameters in time quadratic in the header's length."""
    padding = 40_000
    hostile = (
        f'Content-Type: multipart/mixed; a="{";" * padding}\r\nSubject: params\r\n\r\nbody\r\n'
    ).encode()
    plain = (
        f"Content-Type: text/plain\r\nX-Pad: {'a' * padding}\r\nSubject: params\r\n\r\nbody\r\n"
    ).encode()

    assert_as_fast_as(send_and_list(mailcatcher, hostile), send_and_list(mailcatcher, plain))


def test_the_html_view_of_an_endless_head_tag_is_as_fast_as_plain_html(mailcatcher):
    """Issue 21: 180 kB of "<head " took 6 s to serve as .html."""
    ids = {}
    for name, body in (("plain", "<p>" + "x" * 180_000), ("hostile", "<head " * 30_000)):
        send(mailcatcher.smtp_port, html_parts(body, 1))
        ids[name] = requests.get(f"{mailcatcher.url}/messages", timeout=60).json()[-1]["id"]

    def view(name: str) -> Callable[[], object]:
        url = f"{mailcatcher.url}/messages/{ids[name]}.html"
        return lambda: requests.get(url, timeout=120).raise_for_status()

    assert_as_fast_as(view("hostile"), view("plain"))


def subject_mail(subject: str) -> bytes:
    return f"From: a@example.com\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


def folded_utf8_subject(size: int) -> str:
    """A UTF-8 subject of about `size` characters as a mail library writes it: encoded
    words of 75 characters, one a line."""
    words = Header("é" * (size // 3), "utf-8").encode(linesep="\r\n")
    return words[:size].rpartition("\r\n")[0]


def repeated(word: str) -> Callable[[int], str]:
    return lambda size: word * (size // len(word))


def made_up_charsets(size: int) -> str:
    return "".join(f"=?x-{n}?q?a?= " for n in range(size // 16))


@pytest.mark.parametrize(
    ("subject", "size"),
    [
        (repeated("=?x-unknown?q?a?= "), 1_000_000),  # issue 28: an unknown charset
        (repeated("=?utf-8?q?aaaaa?= "), 1_000_000),  # not the charset: words on one line
        (repeated("=?utf-8?q?a "), 64_000),  # never closed: each scanned to the line's end
        (made_up_charsets, 1_000_000),  # each name a fresh search of the codec registry
    ],
    ids=["unknown-charset", "utf-8-one-line", "unterminated", "made-up-charsets"],
)
def test_a_subject_of_encoded_words_is_stored_as_fast_as_one_a_mailer_folds(
    mailcatcher, subject, size
):
    """Issue 28: the email package decodes encoded words in time quadratic in how many
    share a line (1 MB of them took 4 to 6 s, against 0.3 s folded as a mailer folds
    them) and scans from each unclosed one to the line's end (300 kB took 84 s)."""
    hostile = subject_mail(subject(size))
    plain = subject_mail(folded_utf8_subject(size))

    # A megabyte takes a second or more under make test's load, and 10 s were three
    # tries (one run of made-up-charsets had no quiet moment in them: 2.5 s against
    # 0.24 s; 0.47 s against 0.12 s alone). The quadratic code took minutes.
    assert_as_fast_as(
        send_and_list(mailcatcher, hostile), send_and_list(mailcatcher, plain), budget=30
    )


NORMAL_HEADERS = [
    "=?utf-8?q?caf=C3=A9?=",
    "Re: =?UTF-8?B?w6lsw6h2ZQ==?= (2)",
    "=?utf-8?q?=E2=82?= =?utf-8?q?=AC?= split in two words",  # one character in two
    "=?iso-8859-1?q?na=EFve?=\r\n =?koi8-r?b?8NLJ18XU?=\r\n and text",
    '"=?utf-8?q?Jos=C3=A9?=" <jose@example.com>, =?utf-8?b?w6k=?= <e@example.com>',
    "[tag]=?utf-8?q?a_b?=, =?us-ascii?q?plain?=",
    Header("é" * 300, "utf-8").encode(linesep="\r\n"),
]


@pytest.mark.parametrize("value", NORMAL_HEADERS)
def test_encoded_words_decode_as_the_email_package_decodes_them(value):
    parsed = parse(f"From: {value}\r\nSubject: {value}\r\n\r\nbody\r\n".encode())

    expected = clean_text(str(make_header(decode_header(value))))
    assert parsed.subject == expected
    assert parsed.from_header == expected


def test_only_the_words_in_an_unknown_charset_stay_as_written():
    """The email package gives up on the whole header; the sink decodes the rest."""
    subject = "=?x-unknown?q?caf=E9?= =?x-unknown?q?!?= or =?utf-8?q?caf=C3=A9?="
    parsed = parse(f"Subject: {subject}\r\n\r\nbody\r\n".encode())

    assert parsed.subject == "=?x-unknown?q?caf=E9?= =?x-unknown?q?!?= or café"
