"""Twilio WhatsApp adapter: verify and parse webhooks, send messages.

Sending goes through the official ``twilio`` client so that the real request
building runs; ``api_base_url`` points it at a local fake in development and
tests (Twilio itself is never reached from there).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client


def signature_is_valid(auth_token: str, url: str, params: Mapping[str, Any], signature: str | None) -> bool:
    """Check ``X-Twilio-Signature`` with Twilio's own algorithm."""
    if not signature or not auth_token:
        return False
    return RequestValidator(auth_token).validate(url, params, signature)


def sign(auth_token: str, url: str, params: Mapping[str, Any]) -> str:
    """Compute the signature Twilio would send (used by the simulator and tests)."""
    return RequestValidator(auth_token).compute_signature(url, params)


@dataclass(frozen=True)
class Media:
    url: str
    content_type: str


@dataclass(frozen=True)
class InboundMessage:
    """One inbound WhatsApp message as Twilio posts it."""

    sid: str
    from_: str
    to: str
    wa_id: str
    profile_name: str
    body: str
    media: list[Media] = field(default_factory=list)
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    label: str | None = None

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> InboundMessage:
        sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
        sender = (form.get("From") or "").strip()
        if not sid or not sender:
            raise ValueError("MessageSid and From are required")
        try:
            num_media = max(0, min(int(form.get("NumMedia") or 0), 10))
        except ValueError:
            num_media = 0
        media = [
            Media(url=form[f"MediaUrl{i}"], content_type=form.get(f"MediaContentType{i}", ""))
            for i in range(num_media)
            if form.get(f"MediaUrl{i}")
        ]
        return cls(
            sid=sid,
            from_=sender,
            to=(form.get("To") or "").strip(),
            wa_id=(form.get("WaId") or "").strip(),
            profile_name=(form.get("ProfileName") or "").strip(),
            body=form.get("Body") or "",
            media=media,
            latitude=_float(form.get("Latitude")),
            longitude=_float(form.get("Longitude")),
            address=form.get("Address") or None,
            label=form.get("Label") or None,
        )


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


class SendError(Exception):
    """Sending failed. ``transient`` says whether a retry may succeed."""

    def __init__(self, message: str, *, transient: bool, code: str | None = None):
        super().__init__(message)
        self.transient = transient
        self.code = code


@dataclass(frozen=True)
class SendResult:
    sid: str
    status: str


class TwilioSender:
    """Sends WhatsApp messages through Twilio's Messages API."""

    def __init__(self, account_sid: str, auth_token: str, api_base_url: str | None = None,
                 timeout: float = 15.0):
        self.client = Client(account_sid, auth_token,
                             http_client=TwilioHttpClient(timeout=timeout))
        if api_base_url:
            # Messages live on the 'api' domain; point it at the local fake.
            self.client.api.base_url = api_base_url.rstrip("/")

    def send(self, *, from_: str, to: str, body: str | None = None,
             content_sid: str | None = None, content_variables: str | None = None,
             status_callback: str | None = None) -> SendResult:
        kwargs: dict[str, Any] = {"from_": from_, "to": to}
        if content_sid:
            kwargs["content_sid"] = content_sid
            if content_variables:
                kwargs["content_variables"] = content_variables
        else:
            kwargs["body"] = body
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            transient = exc.status >= 500 or exc.status == 429
            raise SendError(f"Twilio {exc.status} {exc.code}: {exc.msg}", transient=transient,
                            code=str(exc.code or exc.status)) from exc
        except requests.RequestException as exc:
            raise SendError(f"Twilio unreachable: {exc.__class__.__name__}", transient=True) from exc
        return SendResult(sid=message.sid, status=message.status or "queued")
