import pytest

from app import keys

LONG = "x" * 281
INVALID = [
    # (email, thought, field, message)
    ("ada@example.com", "", "thought", "cannot be blank"),
    ("ada@example.com", "   \t  ", "thought", "cannot be blank"),
    ("ada@example.com", LONG, "thought", "280 characters"),
    ("ada@example.com", "tab\x07bell", "thought", "control characters"),
    ("ada@example.com", "two\nlines", "thought", "control characters"),
    ("", "hi", "email", "enter your email address"),
    ("not-an-address", "hi", "email", "not a valid email address"),
    ("ada@", "hi", "email", "not a valid email address"),
    ("ada@example.com\r\nBcc: eve@example.com", "hi", "email", "cannot contain line breaks"),
    ("ada@example.com\n", "hi", "email", "cannot contain line breaks"),
    # Nothing visible: zero-width and other blank-looking characters.
    ("ada@example.com", "\u200b", "thought", "cannot be blank"),
    ("ada@example.com", " \u200b\u200d\ufeff\u2060 ", "thought", "cannot be blank"),
    ("ada@example.com", "\u3164\u2800\u034f", "thought", "cannot be blank"),
    ("ada@example.com", "line\u2028break", "thought", "control characters"),
    ("ada@example.com", "para\u2029break", "thought", "control characters"),
    # Text that shows in another order than it is written: cache test exe.png.
    ("ada@example.com", "cache test \u202egnp.exe", "thought", "direction of text"),
    ("ada@example.com", "\u2067isolated\u2069", "thought", "direction of text"),
    ("ada@example.com", "\u202aembedded\u202c", "thought", "direction of text"),
    # What the mailer cannot send: non-ASCII before the @, an encoded word.
    ("üser@example.com", "hi", "email", "not a valid email address"),
    ("ｕser@example.com", "hi", "email", "not a valid email address"),
    ("=?utf-8?q?a=0D=0Ab?=@example.com", "hi", "email", "cannot contain"),
    ("=?UTF-8?B?YQ0KYg==?=@example.com", "hi", "email", "cannot contain"),
]


@pytest.mark.parametrize(("email", "thought", "field", "message"), INVALID)
def test_invalid_input_rerenders_with_422_and_stores_nothing(
    thought_form, redis, email, thought, field, message
):
    response = thought_form.submit(email=email, thought=thought)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="{field}-errors"' in page
    assert message in page
    assert redis.keys("workit:*") == []
    assert redis.llen("rq:queue:mailers") == 0


def test_invalid_post_keeps_what_was_typed(thought_form):
    page = thought_form.submit(email="not-an-address", thought="keep me").get_data(as_text=True)
    assert 'value="keep me"' in page
    assert 'value="not-an-address"' in page


def test_exactly_280_characters_is_accepted(thought_form):
    assert thought_form.submit(thought="y" * 280).status_code == 303


def test_surrounding_whitespace_is_trimmed(thought_form, redis):
    location = thought_form.submit(email="  ada@example.com ", thought="  hi  ").headers["Location"]
    key = keys.submission(location.rsplit("/", 1)[-1])
    assert redis.hget(key, "thought") == b"hi" and redis.hget(key, "email") == b"ada@example.com"


def test_post_without_csrf_token_rerenders_the_form_with_400(client, redis):
    response = client.post("/", data={"email": "ada@example.com", "thought": "sneaky"})

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "form expired" in page
    assert 'value="sneaky"' in page
    assert redis.keys("workit:*") == []


DEV_ADDRESSES = ["you@example.test", "ada@localhost", "gifs@work-it.localhost"]


@pytest.mark.parametrize("email", DEV_ADDRESSES)
def test_test_and_localhost_addresses_are_accepted_by_default(thought_form, email):
    assert thought_form.submit(email=email).status_code == 303


@pytest.mark.parametrize("email", DEV_ADDRESSES)
def test_a_deployment_can_refuse_test_and_localhost_addresses(make_app, email):
    from tests.conftest import ThoughtForm

    form = ThoughtForm(make_app(ALLOW_TEST_EMAIL_DOMAINS=False).test_client())
    response = form.submit(email=email)
    assert response.status_code == 422
    assert "not a valid email address" in response.get_data(as_text=True)


@pytest.mark.parametrize("email", ["ada@@localhost", "a b@example.test", "ada@.localhost"])
def test_dev_domains_still_get_the_syntax_check(thought_form, email):
    assert thought_form.submit(email=email).status_code == 422


def test_a_visible_thought_with_invisible_characters_is_accepted(thought_form):
    assert thought_form.submit(thought="\u200bhello\u200d").status_code == 303
