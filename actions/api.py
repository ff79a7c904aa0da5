"""The one client of the webapp REST API used by every action.

Configured from the environment (WEBAPP_API_URL, WEBAPP_SERVICE_TOKEN) when
first used, never at import time: rasa-sdk imports every module at start.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import quote

import requests


class ApiError(Exception):
    """The API could not be reached or answered with an unexpected error."""


class ApiRefused(Exception):
    """The API answered with a 4xx the action can explain to the customer."""

    def __init__(self, status: int, payload: dict):
        super().__init__(f"{status}: {payload}")
        self.status = status
        self.payload = payload

    @property
    def code(self) -> str:
        return (self.payload.get("error") or {}).get("code", "")

    @property
    def field(self) -> str:
        return (self.payload.get("error") or {}).get("field", "")


class WebappClient:
    def __init__(self, base_url: str, token: str, timeout: float = 15.0):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def request(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ApiError(f"{method} {path}: {exc.__class__.__name__}") from exc
        try:
            payload = response.json() if response.content else {}
        except ValueError:
            payload = {}
        if 400 <= response.status_code < 500 and response.status_code not in (401, 403, 429):
            raise ApiRefused(response.status_code, payload)
        if response.status_code >= 400:
            raise ApiError(f"{method} {path}: HTTP {response.status_code}")
        return payload

    # -- customers
    def customer(self, phone: str) -> dict | None:
        try:
            return self.request("GET", f"/customers/by-phone/{quote(phone)}")["customer"]
        except ApiRefused as exc:
            if exc.status == 404:
                return None
            raise

    def register(self, phone: str, name: str, email: str, language: str) -> dict:
        return self.request("POST", "/customers", json={"phone": phone, "name": name, "email": email,
                                                        "language": language})

    def resend_code(self, phone: str) -> dict:
        return self.request("POST", f"/customers/by-phone/{quote(phone)}/verification")

    def verify(self, phone: str, code: str) -> dict:
        return self.request("POST", f"/customers/by-phone/{quote(phone)}/verify", json={"code": code})

    def set_language(self, phone: str, language: str) -> dict:
        return self.request("PATCH", f"/customers/by-phone/{quote(phone)}", json={"language": language})

    # -- tickets
    def create_ticket(self, phone: str, subject: str, description: str, idempotency_key: str) -> dict:
        return self.request("POST", "/tickets", json={"phone": phone, "subject": subject,
                                                      "description": description,
                                                      "idempotency_key": idempotency_key})["ticket"]

    def tickets(self, phone: str) -> list[dict]:
        return self.request("GET", "/tickets", params={"phone": phone})["tickets"]

    def ticket(self, phone: str, number: int) -> dict | None:
        try:
            return self.request("GET", f"/tickets/{number}", params={"phone": phone})["ticket"]
        except ApiRefused as exc:
            if exc.status == 404:
                return None
            raise

    def handoff(self, phone: str, reason: str, context: dict) -> dict:
        """Returns {"ticket": {...}, "business_hours": {"open", "opens_at", "opens_at_text"}}."""
        return self.request("POST", f"/conversations/by-phone/{quote(phone)}/handoff",
                            json={"reason": reason, "context": context})

    def close_ticket(self, phone: str, number: int) -> dict:
        return self.request("POST", f"/tickets/{int(number)}/close", json={"phone": phone})["ticket"]

    def reopen_ticket(self, phone: str, number: int) -> dict:
        return self.request("POST", f"/tickets/{int(number)}/reopen", json={"phone": phone})["ticket"]

    def set_notifications(self, phone: str, enabled: bool) -> dict:
        return self.request("PATCH", f"/customers/by-phone/{quote(phone)}",
                            json={"notify_whatsapp": enabled})["customer"]

    # -- knowledge base
    def kb_search(self, text: str, language: str) -> dict:
        """Returns {"confident": bool, "results": [{"id", "slug", "title", "answer", "score", "confident"}]}."""
        return self.request("GET", "/kb/search", params={"q": text[:500], "language": language, "limit": 3})


_client: WebappClient | None = None


def client() -> WebappClient:
    global _client
    if _client is None:
        _client = WebappClient(os.environ.get("WEBAPP_API_URL", "http://127.0.0.1:5000/api/v1"),
                               os.environ.get("WEBAPP_SERVICE_TOKEN", ""),
                               timeout=float(os.environ.get("WEBAPP_API_TIMEOUT", "15")))
    return _client


def reset_client() -> None:
    global _client
    _client = None


async def call(method_name: str, *args: Any) -> Any:
    """Run a client call in a thread so a slow API never blocks the action server."""
    return await asyncio.to_thread(getattr(client(), method_name), *args)
