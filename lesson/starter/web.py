"""Work-It's starter: a form that sends you a GIF email, while you wait."""

import os

from flask import Flask, jsonify, render_template, request
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from wtforms import EmailField, StringField
from wtforms.validators import DataRequired, Email, Length

import store
from mailer import mail, send_randomness_email

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("SECRET_KEY", "for this machine only"),
    MAIL_SERVER="127.0.0.1",
    MAIL_PORT=int(os.environ.get("MAIL_PORT", "1025")),
    MAIL_DEFAULT_SENDER="gifs@work-it.localhost",
)
mail.init_app(app)
csrf = CSRFProtect(app)


class ThoughtForm(FlaskForm):
    email = EmailField("Your email address", validators=[DataRequired(), Email()])
    thought = StringField("A thought", validators=[DataRequired(), Length(max=280)])


def accept(email: str, thought: str) -> int:
    """Keep the thought and send its email. Both the form and the API come here."""
    thought_id = store.save(email, thought)
    send_randomness_email(email, thought)
    return thought_id


@app.route("/", methods=["GET", "POST"])
def new_thought():
    form = ThoughtForm()
    if form.validate_on_submit():
        thought_id = accept(form.email.data, form.thought.data)
        return render_template("accepted.html", thought_id=thought_id)
    return render_template("new.html", form=form), 422 if form.errors else 200


@app.post("/api/thoughts")
@csrf.exempt  # JSON only: a page on another site cannot send it without asking first
def create_thought():
    form = ThoughtForm(data=request.get_json(silent=True) or {}, meta={"csrf": False})
    if not form.validate():
        return jsonify(errors=form.errors), 422
    return jsonify(id=accept(form.email.data, form.thought.data)), 201
