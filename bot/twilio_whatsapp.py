"""Twilio WhatsApp adapter: verify and parse webhooks, send messages.

Sending goes through the official ``twilio`` client so that the real request
building runs; ``api_base_url`` points it at a local fake in development and
tests (Twilio itself is never reached from there).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from .phone import InvalidPhone, whatsapp_address

TWILIO_API = "https://api.twilio.com"


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
        # Every MediaUrlN present counts, whatever NumMedia says (Twilio sends at most 10).
        media = [
            Media(url=form[f"MediaUrl{i}"].strip(), content_type=(form.get(f"MediaContentType{i}") or "").strip())
            for i in range(MAX_MEDIA)
            if (form.get(f"MediaUrl{i}") or "").strip()
        ]
        latitude, longitude = _coordinate(form.get("Latitude"), 90), _coordinate(form.get("Longitude"), 180)
        if latitude is None or longitude is None:
            latitude = longitude = None
        return cls(
            sid=sid,
            from_=sender,
            to=(form.get("To") or "").strip(),
            wa_id=(form.get("WaId") or "").strip(),
            profile_name=_text(form.get("ProfileName")).strip(),
            body=_text(form.get("Body")),
            media=media,
            latitude=latitude,
            longitude=longitude,
            address=_short(form.get("Address")) if latitude is not None else None,
            label=_short(form.get("Label")) if latitude is not None else None,
        )


MAX_MEDIA = 10


def _coordinate(value: str | None, bound: float) -> float | None:
    """A latitude or longitude as a number, or None when it is not a real one
    ('nan', 'inf' and out-of-range values would poison the JSON column)."""
    try:
        number = float((value or "").strip().replace(",", "."))
    except ValueError:
        return None
    return number if math.isfinite(number) and -bound <= number <= bound else None


def _text(value: str | None) -> str:
    """Text as sent, minus NUL characters (PostgreSQL cannot store them)."""
    return (value or "").replace("\x00", "")


def _short(value: str | None, limit: int = 500) -> str | None:
    text = " ".join(_text(value).split())
    return text[:limit] or None


def _whatsapp(address: str) -> str:
    """``whatsapp:+E164`` for any spelling of a number: without the prefix
    Twilio would send an SMS. A value that is no number is left for Twilio to
    refuse (a permanent error the outbox shows)."""
    try:
        return whatsapp_address(address)
    except InvalidPhone:
        return address


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


@dataclass(frozen=True)
class SentRecord:
    """A message Twilio has, as its Messages list gives it."""

    sid: str
    to: str
    body: str
    status: str
    created_at: datetime | None
    error_code: str | None = None


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
        kwargs: dict[str, Any] = {"to": _whatsapp(to)}
        if from_.startswith("MG"):  # a Messaging Service picks the sender itself
            kwargs["messaging_service_sid"] = from_
        else:
            kwargs["from_"] = _whatsapp(from_)
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

    def recent(self, *, from_: str, to: str, limit: int = 50) -> list[SentRecord]:
        """Messages Twilio has from ``from_`` to ``to``, newest first: whether a
        send whose answer never came (a timeout, a crash) went out after all."""
        kwargs: dict[str, Any] = {"to": _whatsapp(to), "limit": limit, "page_size": limit}
        if not from_.startswith("MG"):
            kwargs["from_"] = _whatsapp(from_)
        try:
            messages = self.client.messages.list(**kwargs)
        except TwilioRestException as exc:
            raise SendError(f"Twilio {exc.status} {exc.code}: {exc.msg}", transient=True,
                            code=str(exc.code or exc.status)) from exc
        except (requests.RequestException, TwilioException) as exc:
            raise SendError(f"Twilio unreachable: {exc.__class__.__name__}", transient=True) from exc
        return [SentRecord(sid=m.sid, to=m.to or "", body=m.body or "", status=m.status or "",
                           created_at=m.date_created, error_code=str(m.error_code) if m.error_code else None)
                for m in messages]


class MediaError(Exception):
    """A media download failed. ``transient`` says whether a retry may succeed."""

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


class TwilioMediaFetcher:
    """Downloads inbound media (``MediaUrlN``) with the account's credentials.

    Twilio answers a media URL with a redirect to a short-lived signed URL on
    its CDN; ``requests`` follows it and drops the Authorization header on the
    way to the other host. Credentials only ever go to ``api_base_url``: a URL
    elsewhere is refused, never fetched.
    """

    def __init__(self, account_sid: str, auth_token: str, api_base_url: str = TWILIO_API,
                 timeout: tuple[float, float] = (5.0, 30.0), max_bytes: int = 25 * 1024 * 1024):
        self.prefix = api_base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.session = requests.Session()
        self.session.auth = (account_sid, auth_token)
        self.session.max_redirects = 5
        self.session.trust_env = False  # no .netrc or proxy credentials on the redirect

    def fetch(self, url: str, out: BinaryIO) -> str:
        """Write the media's bytes to ``out``; return the content type Twilio gave."""
        if not url.startswith(self.prefix):
            raise MediaError("not a media URL of the configured Twilio API", transient=False)
        try:
            with self.session.get(url, timeout=self.timeout, stream=True, allow_redirects=True) as response:
                if response.status_code != 200:
                    transient = response.status_code >= 500 or response.status_code in (404, 408, 429)
                    raise MediaError(f"HTTP {response.status_code} from {_origin(response.url)}",
                                     transient=transient)
                size = 0
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise MediaError(f"larger than {self.max_bytes} bytes", transient=False)
                    out.write(chunk)
                return (response.headers.get("Content-Type") or "").split(";")[0].strip()
        except requests.RequestException as exc:
            raise MediaError(f"{exc.__class__.__name__} fetching media", transient=True) from exc


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
