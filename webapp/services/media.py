"""Inbound media: recorded with the message, downloaded by the worker, kept
under ``MEDIA_DIR`` and served to agents (``webapp/agent/media.py``).

Twilio's media URLs need the account's credentials, expire with the message
and say nothing to an agent, so the bytes are fetched once and kept. A failed
download is retried with backoff on its own schedule: the conversation never
waits for it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from flask import current_app

from bot.twilio_whatsapp import TWILIO_API, Media, MediaError, TwilioMediaFetcher

from ..extensions import db
from ..models import MediaFile, Message, utcnow
from .outbox import backoff

log = logging.getLogger(__name__)


def record(message: Message, media: list[Media]) -> None:
    """Add a download job per attachment to the caller's transaction."""
    for position, item in enumerate(media):
        db.session.add(MediaFile(message=message, position=position, url=item.url,
                                 content_type=item.content_type[:100]))


def make_fetcher() -> TwilioMediaFetcher:
    cfg = current_app.config
    return TwilioMediaFetcher(cfg["TWILIO_ACCOUNT_SID"], cfg["TWILIO_AUTH_TOKEN"],
                              api_base_url=cfg["TWILIO_API_BASE_URL"] or TWILIO_API,
                              max_bytes=cfg["MEDIA_MAX_BYTES"])


def waiting(limit: int = 500) -> list[int]:
    """Attachments due for a download, the oldest first."""
    return list(db.session.scalars(
        db.select(MediaFile.id).where(MediaFile.status.in_(("pending", "failed")),
                                      MediaFile.next_attempt_at <= utcnow())
        .order_by(MediaFile.id).limit(limit)))


def fetch_due(fetcher: TwilioMediaFetcher | None = None) -> int:
    """Download every due attachment, one after another (the worker runs
    ``fetch`` per attachment on a thread pool)."""
    return sum(fetch(media_id, fetcher) for media_id in waiting())


def storage_root() -> Path:
    return Path(current_app.config["MEDIA_DIR"])


def file_of(item: MediaFile) -> Path | None:
    """The stored file of an attachment, or None when there is none (yet)."""
    if item.status != "stored" or not item.path:
        return None
    path = storage_root() / item.path
    return path if path.is_file() else None


class _Hashing:
    """A file wrapper that hashes what is written through it."""

    def __init__(self, raw):
        self.raw, self.sha256, self.size = raw, hashlib.sha256(), 0

    def write(self, chunk: bytes) -> int:
        self.sha256.update(chunk)
        self.size += len(chunk)
        return self.raw.write(chunk)


def fetch(media_id: int, fetcher: TwilioMediaFetcher | None = None) -> bool:
    """Download one attachment; returns whether it is now stored."""
    item = db.session.get(MediaFile, media_id)
    if item is None or item.status not in ("pending", "failed") or item.next_attempt_at > utcnow():
        return False
    item.attempts += 1
    # No transaction stays open during the download.
    db.session.commit()
    root = storage_root()
    root.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=root, prefix=".download-")
    try:
        with os.fdopen(handle, "wb") as raw:
            out = _Hashing(raw)
            served_type = (fetcher or make_fetcher()).fetch(item.url, out)
        digest = out.sha256.hexdigest()
        # Content-addressed: the same photo sent twice is kept once.
        relative = f"{digest[:2]}/{digest}"
        (root / digest[:2]).mkdir(exist_ok=True)
        os.replace(temp, root / relative)
    except MediaError as exc:
        _discard(temp)
        return _failed(item, str(exc), exc.transient)
    except OSError as exc:  # disk full, permissions: worth another try
        _discard(temp)
        return _failed(item, f"{exc.__class__.__name__}: {exc}", True)
    item.status, item.path, item.sha256, item.size = "stored", relative, digest, out.size
    item.content_type = item.content_type or served_type[:100]
    item.fetched_at = utcnow()
    item.last_error = None
    db.session.commit()
    return True


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _failed(item: MediaFile, error: str, transient: bool) -> bool:
    item.last_error = error[:2000]
    if transient and item.attempts < current_app.config["OUTBOX_MAX_ATTEMPTS"]:
        item.status = "failed"
        item.next_attempt_at = utcnow() + backoff(item.attempts)
    else:
        item.status = "dead"
    log.warning("media %s %s attempt %s: %s", item.id, item.status, item.attempts, error)
    db.session.commit()
    return False
