"""ThoughtForm: the one place input is checked, for the HTML form and the JSON API alike."""

import unicodedata
from datetime import UTC, datetime, timedelta, timezone

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, StringField
from wtforms.validators import DataRequired, Length, StopValidation, ValidationError

THOUGHT_MAX_CHARS = 280
SEND_AT_MAX_DAYS = 7
# How an RFC 2047 encoded word starts: the email library decodes these in headers.
ENCODED_WORD = "=?"
# UTC offsets in use run from -12:00 to +14:00.
UTC_OFFSET_MAX_MINUTES = 14 * 60


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def no_line_breaks(form: FlaskForm, field: EmailField) -> None:
    # Checked before Email() so the reason is plain: a CR/LF in an address is
    # how header injection starts, and it never belongs in one.
    raw = field.raw_data[0] if field.raw_data else ""
    if "\r" in raw or "\n" in raw:
        raise StopValidation("An email address cannot contain line breaks.")


# Control characters, and the two Unicode line breaks (U+2028, U+2029) that are not.
BREAKING_CATEGORIES = {"Cc", "Zl", "Zp"}
# Characters that draw nothing on their own: format characters (a zero-width space),
# combining marks with nothing to combine with, and letters that are blank by design.
INVISIBLE_CATEGORIES = {"Cf", "Mn", "Me", "Mc"}
BLANK_LETTERS = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"}


# Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): a
# right-to-left override turns "cache test <RLO>gnp.exe" into "cache test exe.png" in
# every subject line and page that shows it.
BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def no_control_characters(form: FlaskForm, field: StringField) -> None:
    data = field.data or ""
    if any(unicodedata.category(ch) in BREAKING_CATEGORIES for ch in data):
        raise ValidationError("Your thought cannot contain control characters or line breaks.")
    if not BIDI_CONTROLS.isdisjoint(data):
        raise ValidationError(
            "Your thought cannot contain control characters that change the direction of text."
        )


def _visible(ch: str) -> bool:
    return not (
        ch.isspace() or ch in BLANK_LETTERS or unicodedata.category(ch) in INVISIBLE_CATEGORIES
    )


def something_visible(form: FlaskForm, field: StringField) -> None:
    """A thought of only zero-width spaces (or the like) is as blank as an empty one."""
    if not any(_visible(ch) for ch in field.data or ""):
        raise StopValidation("Please share a thought (it cannot be blank).")


class EmailAddress:
    """Syntax only (no DNS look-up, so the form works offline and stays fast), and
    only what the mailer can deliver: the part before the @ in ASCII (SMTPUTF8 is
    not asked of the mail server) and holding no RFC 2047 encoded word, which the
    email library would decode into the header (a CR/LF, say). On success the field
    holds the address as it will be delivered: email-validator's normalised form
    with the domain in ASCII (`Ada@ＥXAMPLE.com` becomes `Ada@example.com`,
    `bücher.example` becomes `xn--bcher-kva.example`), which is what is stored and
    what the per-recipient limit counts.

    email-validator refuses special-use domains, yet `you@example.test` and
    `ada@localhost` are what people type into a dev tool whose mail goes to a
    local catcher. With ALLOW_TEST_EMAIL_DOMAINS on (the dev default) `*.test`
    passes through the library's own test_environment switch, and `localhost`
    names are checked by the same rules as if they ended in `.test`.
    """

    def __init__(self, message: str) -> None:
        self.message = message

    def __call__(self, form: FlaskForm, field: EmailField) -> None:
        allow_test = current_app.config["ALLOW_TEST_EMAIL_DOMAINS"]
        address = field.data or ""
        domain = address.rpartition("@")[2].lower()
        suffix = ""
        if allow_test and (domain == "localhost" or domain.endswith(".localhost")):
            suffix = ".test"
        try:
            valid = validate_email(
                address + suffix,
                check_deliverability=False,
                test_environment=allow_test,
                allow_smtputf8=False,
            )
        except EmailNotValidError as exc:
            raise ValidationError(f"{self.message} {exc}") from exc
        if ENCODED_WORD in valid.local_part:
            raise ValidationError(f"{self.message} It cannot contain {ENCODED_WORD!r}.")
        field.data = valid.ascii_email.removesuffix(suffix)


def within_the_week(form: "ThoughtForm", field: StringField) -> None:
    """Optional "send at": a moment in the next SEND_AT_MAX_DAYS days, kept in UTC as
    ``field.moment``. The API gives ISO 8601 with its offset; the page's datetime-local
    value has none, so the page sends the browser's offset beside it (utc_offset)."""
    field.moment = None
    if not field.data:
        return
    try:
        moment = datetime.fromisoformat(field.data)
    except ValueError as exc:
        raise ValidationError("Give the time as 2026-11-27T09:00:00+01:00 (ISO 8601).") from exc
    if moment.tzinfo is None:
        offset = _offset_minutes(form.utc_offset.data)
        if offset is None:
            raise ValidationError("Include the time zone, as in 2026-11-27T09:00:00Z or +01:00.")
        moment = moment.replace(tzinfo=timezone(timedelta(minutes=offset)))
    moment = moment.astimezone(UTC)
    now = datetime.now(UTC)
    if moment <= now:
        raise ValidationError("That time has passed: pick one in the future.")
    if moment > now + timedelta(days=SEND_AT_MAX_DAYS):
        raise ValidationError(f"Pick a time at most {SEND_AT_MAX_DAYS} days ahead.")
    field.moment = moment


def _offset_minutes(raw: str | None) -> int | None:
    try:
        minutes = int(raw or "")
    except ValueError:
        return None
    return minutes if abs(minutes) <= UTC_OFFSET_MAX_MINUTES else None


class ThoughtForm(FlaskForm):
    email = EmailField(
        "Your email address",
        filters=[_strip],
        validators=[
            DataRequired("Please enter your email address."),
            no_line_breaks,
            EmailAddress("That is not a valid email address."),
        ],
    )
    thought = StringField(
        "A thought",
        filters=[_strip],
        validators=[
            DataRequired("Please share a thought (it cannot be blank)."),
            something_visible,
            Length(max=THOUGHT_MAX_CHARS, message=f"Keep it to {THOUGHT_MAX_CHARS} characters."),
            no_control_characters,
        ],
    )
    send_at = StringField("Send at", filters=[_strip], validators=[within_the_week])
    # Minutes east of UTC of the browser at the chosen time; static/send_at.js sets it.
    utc_offset = HiddenField(default="0")
