"""The ``db`` setting as the Python layer shows it: a SQLite file, or a PostgreSQL URL whose
password never appears in a banner, a log line or an error message."""

from __future__ import annotations

import os
import re

from ._core import is_postgres_url

# The password of a URL's user info (scheme://user:password@host) and a password given as a
# query parameter (?password=... or &sslpassword=...), wherever such a URL appears in a text.
_USERINFO_PASSWORD = re.compile(r"(postgres(?:ql)?://[^\s:@/?#]*:)[^\s@/?#]*@", re.IGNORECASE)
_PARAMETER_PASSWORD = re.compile(r"((?:\?|&|\b)(?:ssl)?password=)[^&\s'\"]*", re.IGNORECASE)
REDACTED = "***"


def redact(text: str) -> str:
    """`text` with every database password in it replaced by ***."""
    text = _USERINFO_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)
    return _PARAMETER_PASSWORD.sub(rf"\g<1>{REDACTED}", text)


def describe(db: str) -> str:
    """The database as the serve banner names it: the URL without its password, or the
    SQLite file's absolute path."""
    if is_postgres_url(db):  # the core's test, the one that picks the store
        return "PostgreSQL " + redact(db)
    if db == ":memory:" or db.startswith("file:"):
        return db
    return os.path.abspath(db)
