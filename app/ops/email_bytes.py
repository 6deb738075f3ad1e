"""Flask-Mail's message written out without parsing its headers again: speed work for
the worker (docs/benchmarks-notes.md, "The pool beside its peers, per job").

Flask-Mail builds the MIME tree with the standard library's compat32 classes, then
sets ``email.policy.SMTP`` on it, so that every header the generator reads while
writing (each part's Content-Type, several times; its boundary) is parsed into a
header object anew, and it compiles a new regular expression for each boundary it
makes up. That was half of a worker's Python CPU per email. Here the same tree is
written under compat32 with SMTP's line ends: a short printable ASCII header line
goes out as it is, any other is folded by ``email.policy.SMTP``, as before; each
multipart part gets a random boundary first (104 bits, short enough that its
Content-Type line needs no folding).

The bytes are Flask-Mail's own, boundaries aside (tests/app/ops/test_email_bytes.py
writes both ways and compares them). MAIL_FAST_WRITE=false sends Flask-Mail's own.

It calls one private member of Flask-Mail, listed in RELIED_ON and pinned by the
test, which fails naming it if a Flask-Mail upgrade changes it.
"""

import secrets
from email import policy
from email.message import Message as MimeMessage

import flask_mail

# Flask-Mail's private member used here -> its parameters.
RELIED_ON: dict[str, tuple[str, ...]] = {"flask_mail.Message._message": ("self",)}


class _AsWritten(policy.Compat32):
    def _fold(self, name: str, value, sanitize: bool) -> str:
        if not isinstance(value, str):
            return super()._fold(name, value, sanitize)
        line = f"{name}: {value}"
        if line.isascii() and line.isprintable() and len(line) <= self.max_line_length:
            return line + self.linesep
        return policy.SMTP.fold(name, value)


AS_WRITTEN = _AsWritten(linesep="\r\n")


def write(message: flask_mail.Message) -> bytes:
    """The bytes ``message.as_bytes()`` gives, but for the boundaries, faster."""
    tree: MimeMessage = message._message()
    tree.policy = AS_WRITTEN  # before anything reads a header
    for part in tree.walk():
        if part.is_multipart():
            part.set_boundary(f"=_{secrets.token_hex(13)}")
    return tree.as_bytes(policy=AS_WRITTEN)


class Written:
    """``message`` for Flask-Mail's Connection.send, which takes everything from it
    (and sets its date) but gets its bytes from write()."""

    def __init__(self, message: flask_mail.Message) -> None:
        self.__dict__["message"] = message

    def __getattr__(self, name: str):
        return getattr(self.message, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self.message, name, value)

    def as_bytes(self) -> bytes:
        return write(self.message)
