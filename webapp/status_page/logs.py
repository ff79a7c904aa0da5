"""Keep status-link tokens out of the logs.

The emailed link is ``/t/<token>``: the first request of every customer
carries the token in its path, and request lines are logged by werkzeug's
development server, by gunicorn's access log (request line, path, environ
atoms) and by Flask when a view fails. A filter on those loggers rewrites
``/t/<anything but a ticket number>`` to ``/t/[redacted]`` (and the status
session cookie's value) before any handler formats the record.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping

REDACTED = "[redacted]"
# After /t/: a ticket number (followed by a separator) or our fixed routes stay; anything else goes.
_LINK = re.compile(r"(/t/)(?!(?:\d{1,18}|resend|resent)(?:[/?#\s\"']|$))[^/?#\s\"']+")
_COOKIE = re.compile(r"(zd_status=)[^;\s\"']+")
LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "flask.app", "webapp")


def redact(text: str) -> str:
    """``text`` without status-link tokens or status session cookies."""
    if "/t/" not in text and "zd_status=" not in text:
        return text
    return _COOKIE.sub(r"\1" + REDACTED, _LINK.sub(r"\1" + REDACTED, text))


def _clean(value):
    return redact(value) if isinstance(value, str) else value


class RedactStatusTokens(logging.Filter):
    """Rewrites a record's message and arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        args = record.args
        if isinstance(args, dict):
            # gunicorn's access log passes one dict of atoms (a subclass with its own lookup): edit in place.
            for key, value in list(dict.items(args)):
                if isinstance(value, str):
                    dict.__setitem__(args, key, redact(value))
        elif isinstance(args, Mapping):
            record.args = {key: _clean(value) for key, value in args.items()}
        elif isinstance(args, tuple):
            record.args = tuple(_clean(a) for a in args)
        return True


_FILTER = RedactStatusTokens()


def install(extra_loggers: tuple[str, ...] = ()) -> None:
    """Add the filter to the loggers that write request lines (idempotent)."""
    for name in LOGGERS + extra_loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactStatusTokens) for f in logger.filters):
            logger.addFilter(_FILTER)
