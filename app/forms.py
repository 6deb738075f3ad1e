"""ThoughtForm: the one place input is checked, for the HTML form and the JSON API alike."""

import unicodedata

from flask_wtf import FlaskForm
from wtforms import EmailField, StringField
from wtforms.validators import DataRequired, Email, Length, StopValidation, ValidationError

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


class ThoughtForm(FlaskForm):
    email = EmailField(
        "Your email address",
        filters=[_strip],
        validators=[
            DataRequired("Please enter your email address."),
            no_line_breaks,
            # Syntax only: no DNS look-up, so the form works offline and stays fast.
            Email("That is not a valid email address.", check_deliverability=False),
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
