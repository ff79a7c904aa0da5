"""Phone-number normalisation for WhatsApp senders.

Twilio sends ``From=whatsapp:+5511988887777`` and ``WaId=5511988887777``.
Customers type numbers as ``(11) 98888-7777`` and so on. Brazilian mobile
numbers gained a ninth digit in 2012-2016 and WhatsApp still reports some
accounts without it, so the *key* used to match customers drops that digit.
"""
from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "BR"


class InvalidPhone(ValueError):
    """The text is not a phone number we can route to."""


def to_e164(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return the E.164 form (``+5511988887777``) of any common spelling."""
    text = (raw or "").strip()
    if text.lower().startswith("whatsapp:"):
        text = text[len("whatsapp:"):]
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        raise InvalidPhone(raw)
    # A bare international number (WaId style) has no '+'; only treat it as
    # international when it is too long to be a national one.
    if not text.startswith("+") and len(digits) >= 12:
        text = "+" + digits
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(raw) from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_key(raw: str, region: str = DEFAULT_REGION) -> str:
    """A matching key: E.164 digits, with a Brazilian mobile's ninth digit removed.

    ``+55 11 98888-7777`` and ``+55 11 8888-7777`` give the same key.
    """
    digits = to_e164(raw, region)[1:]
    if digits.startswith("55") and len(digits) == 13 and digits[4] == "9":
        digits = digits[:4] + digits[5:]
    return digits


def whatsapp_address(raw: str, region: str = DEFAULT_REGION) -> str:
    """``whatsapp:+E164``, the form Twilio needs on both To and From."""
    return "whatsapp:" + to_e164(raw, region)
