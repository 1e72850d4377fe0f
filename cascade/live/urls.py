"""Database URLs fit to show: without their passwords (a url's, a query's `password` or
`sslpassword`, a conninfo string's), and a server's error with them taken out. Kept apart
from the PostgreSQL store, so that showing a url never loads the driver."""

from __future__ import annotations

import re
from urllib.parse import unquote

from cascade.core.redaction import REDACTED

# a conninfo string (`host=... password=...`) rather than a url
_CONNINFO_PASSWORD = re.compile(r"(\b\w*password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)", re.IGNORECASE)


def _without_passwords(url: str) -> tuple[str, set[str]]:
    """`url` with its passwords taken out, and those passwords (as written and decoded)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        found = {m.group(2).strip("'") for m in _CONNINFO_PASSWORD.finditer(url)}
        return _CONNINFO_PASSWORD.sub(rf"\g<1>{REDACTED}", url), found
    rest, has_query, query = rest.partition("?")
    found = set()
    userinfo, at, hosts = rest.rpartition("@")  # the last @: a password may hold an unescaped @ or /
    if at:
        user, colon, password = userinfo.partition(":")
        if colon:
            found.add(password)
        rest = f"{user}@{hosts}"
    kept = []
    for param in query.split("&") if has_query else []:
        key, _, value = param.partition("=")
        if unquote(key).strip().lower().endswith("password"):  # sslpassword too
            found.add(value)
        elif param:
            kept.append(param)
    shown = f"{scheme}://{rest}" + (f"?{'&'.join(kept)}" if kept else "")
    return shown, {form for password in found for form in (password, unquote(password)) if form}


def safe_url(url: str) -> str:
    """`url` as it may be shown: user, hosts, ports, database and options, no password."""
    return _without_passwords(url)[0]


def scrubbed(error: Exception, url: str) -> str:
    """A server's or the driver's error, without any password of `url` in it."""
    text = str(error).strip()
    for password in sorted(_without_passwords(url)[1], key=len, reverse=True):
        text = text.replace(password, REDACTED)
    return text
