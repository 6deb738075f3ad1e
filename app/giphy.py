"""Find a GIF for a thought: Giphy's translate endpoint when a key is set, else the offline set.

Giphy is an outside service, so every call has short timeouts and any failure
(network, 401, 429, a body we do not understand) falls back to a GIF that ships
with the project. The email always goes out; the submission records which it got.
"""

import hashlib
import logging
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import requests
from flask import current_app

log = logging.getLogger(__name__)

OFFLINE_DIR = Path(__file__).resolve().parent / "static" / "gifs"
TRANSLATE_PATH = "/v1/gifs/translate"
CONNECT_TIMEOUT_SECONDS = 2.0

# One session per process: keeps connections to Giphy alive between jobs.
_session = requests.Session()


@dataclass(frozen=True)
class Gif:
    source: str  # "giphy" or "offline"
    url: str  # remote URL (giphy) or the file name (offline, attached inline)
    title: str
    data: bytes | None = None  # the image itself, for the offline set
    note: str = ""  # why the offline set was used although Giphy was tried


def find_gif(thought: str) -> Gif:
    api_key = current_app.config["GIPHY_API_KEY"]
    if not api_key:
        return offline_gif(thought)
    try:
        return translate(thought, api_key)
    except (requests.RequestException, ValueError, LookupError, TypeError) as exc:
        note = f"Giphy unavailable ({_describe(exc)}); used the offline set"
        log.warning("giphy fallback: %s", note)
        return offline_gif(thought, note=note)


def translate(thought: str, api_key: str) -> Gif:
    """Call /v1/gifs/translate; raise on any answer that is not a usable GIF."""
    config = current_app.config
    response = _session.get(
        config["GIPHY_API_URL"].rstrip("/") + TRANSLATE_PATH,
        params={"api_key": api_key, "s": thought},
        timeout=(CONNECT_TIMEOUT_SECONDS, config["GIPHY_TIMEOUT_SECONDS"]),
    )
    response.raise_for_status()
    data = response.json()["data"]
    if not data:  # Giphy answers {"data": []} when nothing matches
        raise LookupError("no GIF matched")
    return Gif(source="giphy", url=data["images"]["fixed_height"]["url"], title=data["title"])


def offline_files() -> list[Path]:
    return sorted(OFFLINE_DIR.glob("*.gif"))


@cache
def offline_set() -> tuple[Gif, ...]:
    """Read once per process: the set ships with the code, and a worker sends hundreds
    of emails a second (listing and reading the files cost a third of a millisecond)."""
    return tuple(
        Gif(source="offline", url=path.name, title=path.stem.split("-", 1)[-1],
            data=path.read_bytes())
        for path in offline_files()
    )  # fmt: skip


def offline_gif(thought: str, note: str = "") -> Gif:
    """The same thought always gets the same GIF (a hash, not random.choice)."""
    gifs = offline_set()
    digest = hashlib.sha256(thought.casefold().encode()).digest()
    gif = gifs[int.from_bytes(digest[:4], "big") % len(gifs)]
    return replace(gif, note=note) if note else gif


def _describe(exc: Exception) -> str:
    """A short reason that never repeats the request URL (it carries the API key)."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    if isinstance(exc, LookupError) and not isinstance(exc, KeyError):
        return str(exc)
    return "unexpected response"
