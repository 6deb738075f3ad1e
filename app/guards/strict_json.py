"""Strict JSON: bodies that Flask would pass on to fail later as a 500 are refused
with a 4xx and the reason (too deep, a lone surrogate, a chunked body cut at the
limit), and only JSON is taken on the API's writes (so it can skip CSRF tokens)."""

import json
import re
from itertools import accumulate
from typing import Any

from flask import abort, current_app, request
from flask.json.provider import DefaultJSONProvider

# The API reads one flat object (depth 1). Flask's session cookie goes through the
# same parser (depth 2 or 3), so the bound leaves room for it and for little else:
# Python's parser recurses per level and dies (RecursionError, a 500) near 1,000.
JSON_MAX_DEPTH = 8
# A JSON string, skipped whole (possessive: no backtracking), so that brackets and
# quotes inside it do not count as nesting.
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing (ValueError, so a 400) what it would otherwise pass on
    to fail later as a 500: nesting deeper than JSON_MAX_DEPTH, and lone surrogates
    (`"\\ud800"` parses to a string that cannot be encoded as UTF-8 for Redis)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        text = s.decode(json.detect_encoding(s), "surrogatepass") if isinstance(s, bytes) else s
        if _depth(text) > JSON_MAX_DEPTH:
            raise ValueError(f"JSON nested deeper than {JSON_MAX_DEPTH} levels")
        value = super().loads(text, **kwargs)
        if _has_surrogate(value):
            raise ValueError("a lone surrogate (such as \\ud800) is not a character")
        return value


def _depth(text: str) -> int:
    """How deep the brackets outside strings go, counted before parsing, so that
    the parser never sees what would exhaust its stack."""
    brackets = re.sub(r"[^\[\]{}]", "", _JSON_STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def _has_surrogate(value: Any) -> bool:
    """Any key or string holding half a surrogate pair (a whole pair is decoded into
    one character by the parser). Recursion is safe: the depth is bounded first."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(_has_surrogate, value))
    return False


def require_json() -> None:
    """Only application/json is accepted on writes. Browsers cannot send that
    cross-site without a CORS preflight, which is why the API can skip CSRF tokens."""
    if request.method == "POST" and not request.is_json:
        abort(415, "Send a JSON body with Content-Type: application/json.")


def json_object() -> dict[str, Any]:
    """The body as a JSON object, or 400 with the parser's reason (where the syntax
    broke, or what StrictJSONProvider refused): Flask's get_json would hide it."""
    try:
        body = current_app.json.loads(_whole_body())
    except ValueError as exc:
        abort(400, f"The body must be a JSON object: {exc}.")
    if not isinstance(body, dict):
        abort(400, "The body must be a JSON object.")
    return body


def _whole_body() -> bytes:
    """The body, or 413 past MAX_CONTENT_LENGTH. With a Content-Length, Werkzeug
    refuses up front; a chunked body it silently cuts at the limit (a truncated JSON,
    a misleading 400), and only a read past the limit raises: so read once more."""
    data = request.get_data()
    request.stream.read(1)
    return data
