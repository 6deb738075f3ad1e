"""A status page or JSON answer never shows an address, in any spelling of it."""

import pytest

from app import keys
from app.guards.privacy import hide_address, mask_email
from harness.submissions import submit

STORED = "ada@xn--bcher-kva.example"  # as the form stores ada@bücher.example
QUOTED = [
    "550 5.1.1 <ada@xn--bcher-kva.example>: no such user",
    "550 5.1.1 <ADA@XN--BCHER-KVA.EXAMPLE>: no such user",
    "550 5.1.1 <ada@bücher.example>: no such user",
    "550 5.1.1 <Ada@BÜCHER.example>: no such user",
]


@pytest.mark.parametrize("error", QUOTED)
def test_every_spelling_of_the_address_is_masked(error):
    masked = hide_address(error, STORED)
    assert "ada@" not in masked.lower()
    assert "a***@" in masked


def test_an_address_stored_in_unicode_is_masked_in_ascii_too():
    assert "ada@" not in hide_address(QUOTED[0], "ada@bücher.example")


def test_mask_keeps_the_first_letter_and_the_domain():
    assert mask_email(STORED) == "a***@xn--bcher-kva.example"


def test_the_page_and_the_api_mask_a_quoted_unicode_spelling(app, client, redis):
    [submission_id] = submit(app, email=STORED)
    redis.hset(
        keys.submission(submission_id), mapping={"status": "failed", "last_error": QUOTED[3]}
    )

    page = client.get(f"/thoughts/{submission_id}").get_data(as_text=True)
    body = client.get(f"/api/thoughts/{submission_id}").get_json()

    assert "bücher.example" in page and "ada@" not in page.lower()
    assert "ada@" not in body["last_error"].lower()
