"""The lesson as a learner clicks through it, in Debian's Chromium, against the
processes `make dev` starts (the steps live in harness/walkthrough.py)."""

import pytest

from harness.walkthrough import Shots, walk

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.timeout(600)
def test_a_learner_walks_the_lesson_in_the_browser(browser, dev_stack, tmp_path):
    walk(browser, dev_stack, Shots(tmp_path / "shots"))
    assert dev_stack.stop_dev() == [], "make dev left processes running after Ctrl-C"
