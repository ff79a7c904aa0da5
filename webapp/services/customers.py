"""Customers: identity by phone, registration and email verification."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy.exc import IntegrityError

from bot.phone import InvalidPhone, phone_key, to_e164

from ..extensions import db
from ..models import Conversation, Customer, VerificationCode, utcnow
from . import outbox
from .errors import DomainError, Invalid, NotFound
from .texts import LANGUAGES, render_email


class TooManyCodes(DomainError):
    status = 429
    code = "too_many_codes"


def default_language(e164: str) -> str:
    return "pt" if e164.startswith("+55") else "en"


def normalise_phone(raw: str) -> tuple[str, str]:
    """Return (key, e164) or raise Invalid."""
    try:
        return phone_key(raw), to_e164(raw)
    except InvalidPhone as exc:
        raise Invalid("invalid phone number", field="phone") from exc


def get_by_phone(raw: str) -> Customer:
    key, _ = normalise_phone(raw)
    customer = db.session.scalar(db.select(Customer).filter_by(phone_key=key))
    if customer is None:
        raise NotFound("customer not found")
    return customer


def find_by_phone(raw: str) -> Customer | None:
    try:
        return get_by_phone(raw)
    except NotFound:
        return None


def get_or_create_for_whatsapp(address: str, wa_id: str = "", profile_name: str = "") -> Conversation:
    """The conversation (and customer) of a WhatsApp sender; safe under races.

    Does not commit: it runs inside the caller's transaction; a concurrent
    insert of the same customer is resolved with a savepoint.
    """
    # WaId is the number's digits; when it is not one (absent, garbled), From decides.
    wa_id = wa_id if wa_id.isdigit() and len(wa_id) <= 20 else ""
    try:
        key, e164 = normalise_phone(wa_id or address)
    except Invalid:
        if not wa_id:
            raise
        key, e164, wa_id = *normalise_phone(address), ""
    customer = db.session.scalar(db.select(Customer).filter_by(phone_key=key))
    if customer is None:
        try:
            with db.session.begin_nested():
                customer = Customer(phone_key=key, phone=e164, wa_id=wa_id or None,
                                    profile_name=profile_name or None,
                                    language=default_language(e164))
                db.session.add(customer)
        except IntegrityError:
            customer = db.session.scalar(db.select(Customer).filter_by(phone_key=key))
    else:
        customer.phone = e164
        if profile_name:
            customer.profile_name = profile_name
        if wa_id:
            customer.wa_id = wa_id
    conversation = db.session.scalar(db.select(Conversation).filter_by(customer_id=customer.id))
    if conversation is None:
        try:
            with db.session.begin_nested():
                conversation = Conversation(customer=customer, address=f"whatsapp:{e164}")
                db.session.add(conversation)
        except IntegrityError:
            conversation = db.session.scalar(db.select(Conversation).filter_by(customer_id=customer.id))
    return conversation


def clean_email(raw: str) -> str:
    """The normalised address, or Invalid when it is not one we can send to.

    Refused here, when the customer types it, rather than at send time: an
    address with a non-ASCII local part (``joão@...``) needs SMTPUTF8, which
    most servers do not offer. Accented domains are fine (sent as IDNA)."""
    try:
        return validate_email((raw or "").strip(), check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError as exc:
        raise Invalid("invalid email address", field="email") from exc


def _code_hash(customer_id: int, code: str) -> str:
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, f"{customer_id}:{code}".encode(), hashlib.sha256).hexdigest()


def register(phone: str, name: str, email: str, language: str | None = None) -> Customer:
    """Record name and email for a phone and email a verification code."""
    name = " ".join((name or "").split())  # one line: it goes into email headers
    if not name or len(name) > 255:
        raise Invalid("a name of 1 to 255 characters is required", field="name")
    email = clean_email(email)
    conversation = get_or_create_for_whatsapp(phone)
    customer = conversation.customer
    if customer.verified and customer.email == email:
        customer.name = name
        db.session.commit()
        return customer
    customer.name = name
    if customer.email != email:
        customer.email = email
        customer.email_verified_at = None
    if language in LANGUAGES:
        customer.language = language
    _issue_code(customer)
    db.session.commit()
    return customer


def resend_code(phone: str) -> Customer:
    customer = get_by_phone(phone)
    if not customer.email:
        raise Invalid("the customer has no email yet", field="email")
    _issue_code(customer)
    db.session.commit()
    return customer


def _issue_code(customer: Customer) -> None:
    now = utcnow()
    # 5 tries per code would mean nothing if codes were unlimited.
    recent = db.session.scalar(db.select(db.func.count()).select_from(VerificationCode).where(
        VerificationCode.customer_id == customer.id, VerificationCode.created_at > now - timedelta(hours=1)))
    if recent >= current_app.config["VERIFICATION_CODES_PER_HOUR"]:
        raise TooManyCodes("too many codes requested; try again later")
    # Only the newest code is alive.
    for old in db.session.scalars(db.select(VerificationCode).filter_by(
            customer_id=customer.id, used_at=None, revoked=False)):
        old.revoked = True
    code = f"{secrets.randbelow(10**6):06d}"
    ttl = current_app.config["VERIFICATION_CODE_TTL_MINUTES"]
    db.session.add(VerificationCode(
        customer_id=customer.id, email=customer.email, code_hash=_code_hash(customer.id, code),
        expires_at=now + timedelta(minutes=ttl)))
    subject, text, html = render_email("verification_code", customer.language,
                                       name=customer.name, code=code, minutes=ttl)
    outbox.queue_email(customer.email, subject, text, html, customer=customer, purpose="verification_code")


def verify_code(phone: str, code: str) -> dict:
    """Check a code typed on WhatsApp. Returns {'result': ..., 'attempts_left': n}.

    result is one of: verified, wrong, dead (too many tries or expired), none.
    """
    customer = get_by_phone(phone)
    now = utcnow()
    max_attempts = current_app.config["VERIFICATION_MAX_ATTEMPTS"]
    record = db.session.scalar(
        db.select(VerificationCode).filter_by(customer_id=customer.id, used_at=None, revoked=False)
        .order_by(VerificationCode.id.desc()).limit(1)
    )
    if record is None:
        return {"result": "none", "attempts_left": 0}
    if not record.is_alive(now, max_attempts):
        return {"result": "dead", "attempts_left": 0}
    digits = "".join(ch for ch in code if ch.isdigit())
    if hmac.compare_digest(record.code_hash, _code_hash(customer.id, digits)) and record.email == customer.email:
        record.used_at = now
        customer.email_verified_at = now
        db.session.commit()
        return {"result": "verified", "attempts_left": max_attempts - record.attempts,
                "customer": customer.to_dict()}
    record.attempts += 1
    db.session.commit()
    left = max_attempts - record.attempts
    return {"result": "wrong" if left > 0 else "dead", "attempts_left": left}


def set_language(phone: str, language: str) -> Customer:
    if language not in LANGUAGES:
        raise Invalid("language must be pt or en", field="language")
    customer = get_by_phone(phone)
    customer.language = language
    customer.language_chosen = True
    db.session.commit()
    return customer


def set_notifications(phone: str, enabled) -> Customer:
    """WhatsApp notifications about ticket changes on ("voltar") or off ("parar")."""
    if not isinstance(enabled, bool):
        raise Invalid("notify_whatsapp must be true or false", field="notify_whatsapp")
    customer = get_by_phone(phone)
    customer.notify_whatsapp = enabled
    db.session.commit()
    return customer
