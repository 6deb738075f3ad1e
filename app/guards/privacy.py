"""What a page or a JSON answer may show of an email address: a masked form only.

A submission's id is a link someone may share; the address behind it is not
theirs to share. Mail servers' errors quote the recipient, in whichever spelling
they were given or chose (its domain in ASCII or in Unicode), so every spelling
is masked.
"""

import re

import idna


def mask_email(address: str) -> str:
    """'a***@example.com': enough of the address to recognise your own, not enough to
    learn someone else's from a link."""
    local, at, domain = address.rpartition("@")
    return f"{local[0]}***@{domain}" if at and local else "***"


def spellings(address: str) -> set[str]:
    """The address with its domain as given, in Unicode, in IDNA 2008 (email-validator,
    idna) and in IDNA 2003 (the standard library's codec, which Flask-Mail uses)."""
    local, at, domain = address.rpartition("@")
    if not at:
        return {address}
    domains = {domain}
    for convert in (idna.decode, idna.encode, lambda d: d.encode("idna"), _decode_2003):
        try:
            converted = convert(domain)
        except (UnicodeError, idna.IDNAError):
            continue
        domains.add(converted.decode() if isinstance(converted, bytes) else converted)
    return {f"{local}@{name}" for name in domains}


def _decode_2003(domain: str) -> str:
    return domain.encode().decode("idna")


def hide_address(text: str, address: str) -> str:
    """Mask each spelling of ``address`` in ``text`` (any case)."""
    if not address:
        return text
    for spelling in sorted(spellings(address), key=len, reverse=True):
        text = re.sub(re.escape(spelling), mask_email(spelling), text, flags=re.IGNORECASE)
    return text
