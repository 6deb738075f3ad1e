import re
from pathlib import Path

from app import config, create_app

ROOT = Path(__file__).resolve().parents[2]


SETTING_LINE = re.compile(r"^# ([A-Z][A-Z0-9_]*)=(.*)$")


def env_example() -> dict[str, str]:
    """The settings .env.example lists, each on a commented-out `# NAME=value` line."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(m.groups() for m in map(SETTING_LINE.match, lines) if m)


def test_env_example_lists_every_setting_with_its_default():
    example = env_example()
    assert set(example) == set(config.SETTINGS)
    loaded = config.load(example)
    assert loaded == config.load({})


def test_env_example_sets_nothing_so_copying_it_changes_nothing():
    """`cp .env.example .env` must leave make dev as it was (where Redis comes from
    included): every line is a comment or blank."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    assert [line for line in lines if line.strip() and not line.startswith("#")] == []


def test_settings_are_read_from_the_environment_and_typed():
    environ = {"MAIL_PORT": "2525", "MAILER_DELAY_SECONDS": "0.5", "MAIL_USE_TLS": "yes"}
    loaded = config.load(environ)
    assert loaded["MAIL_PORT"] == 2525
    assert loaded["MAILER_DELAY_SECONDS"] == 0.5
    assert loaded["MAIL_USE_TLS"] is True


def test_overrides_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("WORKIT_DELIVERY", "now")
    app = create_app({"WORKIT_DELIVERY": "later", "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert app.config["WORKIT_DELIVERY"] == "later"
    assert create_app({"REDIS_URL": "redis://127.0.0.1:1/0"}).config["WORKIT_DELIVERY"] == "now"
