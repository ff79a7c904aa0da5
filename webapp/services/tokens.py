"""Scoped JWTs for customer status links, and the cookie they are exchanged for.

A status token has its own audience and signing key, allows reading one
ticket and nothing else, and expires. Agent and service tokens are issued by
flask-jwt-extended; PyJWT refuses a token with an audience it was not told to
expect, so a status token can never act as an agent token, and vice versa.

Opening the emailed link exchanges the token for a short-lived session cookie
(another audience, another key) that names the same ticket; the page itself
lives at a URL without the token (webapp.status_page).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt
from flask import current_app

from ..models import utcnow

STATUS_AUDIENCE = "zapdesk:ticket-status"
STATUS_SCOPE = "ticket:read"
SESSION_AUDIENCE = "zapdesk:ticket-status-session"
ALGORITHMS = ["HS256"]
LANGUAGES = ("pt", "en")
# A real link is about 250 characters: anything much longer is not worth decoding.
MAX_TOKEN_LENGTH = 2048
_REQUIRED = ["exp", "sub", "aud", "scope"]


def _key(purpose: bytes = b"status-link-v1") -> bytes:
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, purpose, hashlib.sha256).digest()


def _session_key() -> bytes:
    return _key(b"status-session-v1")


def make_status_token(ticket_id: int, *, days: int | None = None, lang: str | None = None) -> str:
    """A link token for reading one ticket; ``lang`` lets an expired link's page speak the customer's language."""
    now = utcnow()
    days = days if days is not None else current_app.config["STATUS_LINK_DAYS"]
    claims = {
        "aud": STATUS_AUDIENCE,
        "sub": str(ticket_id),
        "scope": STATUS_SCOPE,
        "iat": now,
        "exp": now + timedelta(days=days),
    }
    if lang in LANGUAGES:
        claims["lang"] = lang
    return jwt.encode(claims, _key(), algorithm="HS256")


class BadStatusToken(Exception):
    pass


@dataclass(frozen=True)
class LinkCheck:
    """What a status link says about itself.

    state: ``valid``; ``expired`` (authentic: signature, audience and scope
    hold, only the expiry failed, so it still identifies its ticket); or
    ``invalid`` (damaged, forged, foreign: it identifies nothing).
    """

    state: str
    ticket_id: int | None = None
    lang: str | None = None  # from the claims; unverified (display only) when invalid
    expires_at: datetime | None = None


def check_status_token(token: str) -> LinkCheck:
    """Classify a link token; never raises, whatever the input."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return LinkCheck("invalid")
    try:
        claims = _decode(token, verify_exp=True)
        state = "valid"
    except jwt.ExpiredSignatureError:
        try:
            claims = _decode(token, verify_exp=False)
        except Exception:  # noqa: BLE001 - any failure: the link identifies nothing
            return LinkCheck("invalid", lang=_unverified_lang(token))
        state = "expired"
    except Exception:  # noqa: BLE001 - PyJWT, base64, JSON and unicode errors alike
        return LinkCheck("invalid", lang=_unverified_lang(token))
    if claims.get("scope") != STATUS_SCOPE or not _is_id(claims.get("sub")):
        return LinkCheck("invalid", lang=_unverified_lang(token))
    lang = claims.get("lang") if claims.get("lang") in LANGUAGES else None
    expires_at = _instant(claims["exp"])
    if expires_at is None:
        return LinkCheck("invalid", lang=lang)
    return LinkCheck(state, int(claims["sub"]), lang, expires_at)


def read_status_token(token: str) -> int:
    """Return the ticket id a valid token allows reading, or raise BadStatusToken."""
    check = check_status_token(token)
    if check.state != "valid":
        raise BadStatusToken(check.state)
    return check.ticket_id


def _decode(token: str, *, verify_exp: bool) -> dict:
    return jwt.decode(token, _key(), algorithms=ALGORITHMS, audience=STATUS_AUDIENCE,
                      options={"require": _REQUIRED, "verify_exp": verify_exp})


def _is_id(value) -> bool:
    # Ticket ids are 32-bit integer columns: a bigger number would be a database error, not a miss.
    return isinstance(value, str) and value.isascii() and value.isdigit() and 0 < len(value) <= 10 \
        and 0 < int(value) < 2 ** 31


def _instant(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _unverified_lang(token: str) -> str | None:
    """The language claim of a token we cannot trust, to pick the page's language only."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except Exception:  # noqa: BLE001
        return None
    lang = claims.get("lang") if isinstance(claims, dict) else None
    return lang if lang in LANGUAGES else None


def status_url(ticket_id: int, lang: str | None = None) -> str:
    """The emailed link. Without ``lang``, the ticket's customer's language goes in the token."""
    if lang is None:
        from ..extensions import db
        from ..models import Ticket
        ticket = db.session.get(Ticket, ticket_id)
        lang = ticket.customer.language if ticket is not None and ticket.customer else None
    base = current_app.config["PUBLIC_BASE_URL"]
    return f"{base}/t/{make_status_token(ticket_id, lang=lang)}"


# --- the session cookie the link is exchanged for ------------------------------------------

@dataclass(frozen=True)
class StatusSession:
    ticket_id: int
    expires_at: datetime  # this cookie's end
    link_expires_at: datetime  # the link's end: renewals never go past it


def make_status_session(ticket_id: int, link_expires_at: datetime) -> tuple[str, StatusSession]:
    """A cookie value for reading one ticket for STATUS_SESSION_MINUTES, never past the link's expiry."""
    now = utcnow()
    minutes = current_app.config["STATUS_SESSION_MINUTES"]
    link_expires_at = link_expires_at.replace(microsecond=0)  # as the claim keeps it
    expires_at = min(now + timedelta(minutes=minutes), link_expires_at)
    claims = {"aud": SESSION_AUDIENCE, "sub": str(ticket_id), "scope": STATUS_SCOPE,
              "iat": now, "exp": expires_at, "lexp": int(link_expires_at.timestamp())}
    value = jwt.encode(claims, _session_key(), algorithm="HS256")
    return value, StatusSession(ticket_id, expires_at, link_expires_at)


def read_status_session(value: str | None, ticket_id: int) -> StatusSession | None:
    """The session in a cookie, if it is ours, current, and for this very ticket; else None."""
    if not value or len(value) > MAX_TOKEN_LENGTH:
        return None
    try:
        claims = jwt.decode(value, _session_key(), algorithms=ALGORITHMS, audience=SESSION_AUDIENCE,
                            options={"require": _REQUIRED + ["lexp"]})
    except Exception:  # noqa: BLE001
        return None
    if claims.get("scope") != STATUS_SCOPE or claims.get("sub") != str(ticket_id):
        return None
    expires_at, link_expires_at = _instant(claims["exp"]), _instant(claims["lexp"])
    if expires_at is None or link_expires_at is None:
        return None
    return StatusSession(ticket_id, expires_at, link_expires_at)
