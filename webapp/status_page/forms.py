"""The status page's one form ("send me a fresh link") and its CSRF check.

Double submit without a server session: the page sets a random nonce in an
HttpOnly, SameSite=Strict cookie scoped to the form's target, and the form
carries the same nonce signed together with the ticket and language it is
about. Another site can neither read the cookie nor forge the signed value.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from hmac import compare_digest

from flask import current_app, request
from itsdangerous import BadData, URLSafeTimedSerializer

COOKIE = "zd_resend"
FIELD = "csrf_token"
PATH = "/t/resend"
MAX_AGE = 3600  # seconds a form stays usable


@dataclass(frozen=True)
class ResendForm:
    ticket_id: int
    lang: str


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="zapdesk-status-resend")


def new_form(ticket_id: int, lang: str) -> tuple[str, str]:
    """(cookie nonce, form value) for a resend form about ``ticket_id``."""
    nonce = secrets.token_urlsafe(32)
    return nonce, _serializer().dumps({"n": nonce, "t": ticket_id, "l": lang})


def set_cookie(response, nonce: str) -> None:
    response.set_cookie(COOKIE, nonce, max_age=MAX_AGE, path=PATH, httponly=True, samesite="Strict",
                        secure=current_app.config["STATUS_COOKIE_SECURE"])


def clear_cookie(response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="Strict",
                           secure=current_app.config["STATUS_COOKIE_SECURE"])


def signed_fields() -> dict | None:
    """The form's signed content if the signature holds and is recent (CSRF not checked yet)."""
    value = request.form.get(FIELD, "")
    if not value or len(value) > 1024:
        return None
    try:
        data = _serializer().loads(value, max_age=MAX_AGE)
    except BadData:
        return None
    if (not isinstance(data, dict) or not isinstance(data.get("n"), str) or data.get("l") not in ("pt", "en")
            or not isinstance(data.get("t"), int) or isinstance(data.get("t"), bool)):
        return None
    return data


def submitted() -> ResendForm | None:
    """The submitted form, if it is ours, recent and sent by the browser it was given to."""
    data = signed_fields()
    cookie = request.cookies.get(COOKIE, "")
    if data is None or not cookie or not compare_digest(data["n"].encode(), cookie.encode()):
        return None
    return ResendForm(data["t"], data["l"])
