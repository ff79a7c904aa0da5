"""Client of Rasa's REST channel (``/webhooks/rest/webhook``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests


class RasaUnavailable(Exception):
    """Rasa did not answer, or answered with an error. Sending again is safe:
    the turn did not happen (connection refused, an error answer)."""


class RasaTimeout(RasaUnavailable):
    """Rasa got the message but did not answer in time. The turn may still
    complete inside Rasa, so sending the message again could run it twice
    (two answers, two tickets): the caller must not simply retry."""


@dataclass(frozen=True)
class BotReply:
    text: str | None
    image: str | None = None
    custom: dict | None = None


class RasaClient:
    def __init__(self, base_url: str, timeout: float = 60.0, session: requests.Session | None = None):
        self.url = base_url.rstrip("/") + "/webhooks/rest/webhook"
        self.timeout = timeout
        self.session = session or requests.Session()

    def send(self, sender_id: str, text: str, metadata: dict[str, Any] | None = None) -> list[BotReply]:
        payload = {"sender": sender_id, "message": text, "metadata": metadata or {}}
        try:
            response = self.session.post(self.url, json=payload, timeout=self.timeout)
        except requests.ReadTimeout as exc:
            raise RasaTimeout(f"no answer within {self.timeout:g} s") from exc
        except requests.RequestException as exc:
            raise RasaUnavailable(f"{exc.__class__.__name__}: {exc}") from exc
        if response.status_code != 200:
            raise RasaUnavailable(f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            items = response.json()
        except ValueError as exc:
            raise RasaUnavailable("Rasa answered with something that is not JSON") from exc
        return [
            BotReply(text=item.get("text"), image=item.get("image"), custom=item.get("custom"))
            for item in items
            if isinstance(item, dict) and recipient_ok(item, sender_id)
        ]


def recipient_ok(item: dict, sender_id: str) -> bool:
    return item.get("recipient_id") in (None, sender_id)
