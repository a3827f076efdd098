"""Find the client's sentry_key and check it against the project's key.

Sentry clients send the key in one of:
  * ``X-Sentry-Auth: Sentry sentry_key=<key>, sentry_version=7, ...``
    (what sentry-sdk sends; ``Authorization: Sentry ...`` is the same thing
    from some older clients),
  * the query string ``?sentry_key=<key>`` (browser/beacon clients),
  * the envelope header's ``dsn`` (envelopes only; see envelope.py).
"""

import hmac
from urllib.parse import parse_qs, urlsplit

from .errors import HttpError


def key_from_auth_header(value):
    """Return sentry_key from a "Sentry k=v, k=v" header value, or None."""
    value = value.strip()
    if value[:7].lower() == "sentry ":
        value = value[7:]
    for part in value.split(","):
        name, sep, val = part.partition("=")
        if sep and name.strip() == "sentry_key":
            return val.strip() or None
    return None


def key_from_environ(environ):
    """Return the sentry_key sent in the auth headers or query string."""
    for header in ("HTTP_X_SENTRY_AUTH", "HTTP_AUTHORIZATION"):
        value = environ.get(header)
        if value:
            key = key_from_auth_header(value)
            if key:
                return key
    query = environ.get("QUERY_STRING")
    if query and "sentry_key" in query:
        values = parse_qs(query).get("sentry_key")
        if values and values[0]:
            return values[0]
    return None


def key_from_dsn(dsn):
    """Return the public key (the URL's user part) of a DSN, or None."""
    if not isinstance(dsn, str):
        return None
    try:
        return urlsplit(dsn).username or None
    except ValueError:
        return None


def check_key(project, given_key):
    """Raise 401/403 unless ``given_key`` is ``project``'s public key.

    ``project`` is None for an unknown project.  The comparison goes through
    hmac.compare_digest so its timing does not reveal how many leading
    characters of a guessed key were right.
    """
    if not given_key:
        raise HttpError(401, "missing sentry_key")
    if project is None:
        raise HttpError(403, "unknown project")
    given = given_key.encode("utf-8", "replace")
    if not hmac.compare_digest(given, project.public_key.encode("ascii")):
        raise HttpError(403, "invalid sentry_key")
