"""Headers on every answer: no framing by other sites, and no caching of what shows
an address."""

from flask import Response, request

NO_FRAMING = "frame-ancestors 'none'"


def forbid_framing(response: Response) -> Response:
    """No other site may show our pages in a frame (clickjacking): the old header for
    old browsers, CSP's frame-ancestors for the rest, added to any policy already set."""
    response.headers["X-Frame-Options"] = "DENY"
    policy = response.headers.get("Content-Security-Policy", "")
    if "frame-ancestors" not in policy:
        policy = f"{policy.rstrip('; ')}; {NO_FRAMING}" if policy else NO_FRAMING
    response.headers["Content-Security-Policy"] = policy
    return response


def forbid_caching(response: Response) -> Response:
    """Pages and API answers show addresses (masked or not): no browser or proxy keeps
    them. Only the static files, which show nobody's, may be cached."""
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response
