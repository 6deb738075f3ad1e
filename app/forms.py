"""ThoughtForm: the one place input is checked, for the HTML form and the JSON API alike."""

import unicodedata

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_wtf import FlaskForm
from wtforms import EmailField, StringField
from wtforms.validators import DataRequired, Length, StopValidation, ValidationError

THOUGHT_MAX_CHARS = 280


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def no_line_breaks(form: FlaskForm, field: EmailField) -> None:
    # Checked before Email() so the reason is plain: a CR/LF in an address is
    # how header injection starts, and it never belongs in one.
    raw = field.raw_data[0] if field.raw_data else ""
    if "\r" in raw or "\n" in raw:
        raise StopValidation("An email address cannot contain line breaks.")


def no_control_characters(form: FlaskForm, field: StringField) -> None:
    if any(unicodedata.category(ch) == "Cc" for ch in field.data or ""):
        raise ValidationError("Your thought cannot contain control characters or line breaks.")


class EmailAddress:
    """Syntax only (no DNS look-up, so the form works offline and stays fast).

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
        if allow_test and (domain == "localhost" or domain.endswith(".localhost")):
            address += ".test"
        try:
            validate_email(address, check_deliverability=False, test_environment=allow_test)
        except EmailNotValidError as exc:
            raise ValidationError(self.message) from exc


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
            Length(max=THOUGHT_MAX_CHARS, message=f"Keep it to {THOUGHT_MAX_CHARS} characters."),
            no_control_characters,
        ],
    )
