"""Scoped JWTs for customer status links.

A status token has its own audience and signing key, allows reading one
ticket and nothing else, and expires. Agent and service tokens are issued by
flask-jwt-extended; PyJWT refuses a token with an audience it was not told to
expect, so a status token can never act as an agent token, and vice versa.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import jwt
from flask import current_app

from ..models import utcnow

STATUS_AUDIENCE = "zapdesk:ticket-status"
STATUS_SCOPE = "ticket:read"
ALGORITHMS = ["HS256"]


def _key() -> bytes:
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, b"status-link-v1", hashlib.sha256).digest()


def make_status_token(ticket_id: int, *, days: int | None = None) -> str:
    now = utcnow()
    days = days if days is not None else current_app.config["STATUS_LINK_DAYS"]
    claims = {
        "aud": STATUS_AUDIENCE,
        "sub": str(ticket_id),
        "scope": STATUS_SCOPE,
        "iat": now,
        "exp": now + timedelta(days=days),
    }
    return jwt.encode(claims, _key(), algorithm="HS256")


class BadStatusToken(Exception):
    pass


def read_status_token(token: str) -> int:
    """Return the ticket id the token allows reading, or raise BadStatusToken."""
    try:
        claims = jwt.decode(token, _key(), algorithms=ALGORITHMS, audience=STATUS_AUDIENCE,
                            options={"require": ["exp", "sub", "aud", "scope"]})
    except jwt.PyJWTError as exc:
        raise BadStatusToken(str(exc)) from exc
    if claims.get("scope") != STATUS_SCOPE or not str(claims["sub"]).isdigit():
        raise BadStatusToken("wrong scope")
    return int(claims["sub"])


def status_url(ticket_id: int) -> str:
    base = current_app.config["PUBLIC_BASE_URL"]
    return f"{base}/t/{make_status_token(ticket_id)}"
