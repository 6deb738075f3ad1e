from app import submissions


def test_form_page_has_both_fields_and_a_csrf_token(client):
    page = client.get("/").get_data(as_text=True)
    assert 'name="email"' in page
    assert 'name="thought"' in page
    assert 'name="csrf_token"' in page


def test_valid_post_stores_enqueues_and_redirects_with_303(thought_form, redis):
    response = thought_form.submit(email="ada@example.com", thought="Tea time")

    assert response.status_code == 303
    submission_id = response.headers["Location"].rsplit("/", 1)[-1]
    stored = submissions.load(redis, submission_id)
    assert (stored.email, stored.thought) == ("ada@example.com", "Tea time")
    assert stored.status == "queued"
    assert redis.llen("rq:queue:mailers") == 1


def test_submission_page_shows_status_and_escapes_the_thought(thought_form, client):
    response = thought_form.submit(thought="<script>alert(1)</script>")
    page = client.get(response.headers["Location"]).get_data(as_text=True)

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert 'id="status">queued<' in page


def test_submission_ids_are_long_and_random(thought_form):
    first = thought_form.submit().headers["Location"].rsplit("/", 1)[-1]
    second = thought_form.submit().headers["Location"].rsplit("/", 1)[-1]
    assert first != second
    assert len(first) >= 22  # 128 bits, URL-safe base64


def test_unknown_submission_is_a_404_page(client):
    response = client.get("/thoughts/not-a-real-id")
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)
