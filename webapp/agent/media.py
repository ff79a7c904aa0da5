"""Customer media for agents: the files the worker downloaded from Twilio.

Only logged-in agents get them. Types a browser could run (HTML, SVG, ...)
are always downloads, never pages, and every answer is sandboxed.
"""
from __future__ import annotations

import mimetypes

from flask import abort, send_file

from ..auth import agent_required
from ..extensions import db
from ..models import MediaFile
from ..services import media as media_service
from . import bp

# Shown in the page; anything else is offered as a download.
INLINE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "audio/", "video/mp4", "video/3gpp")


def inline(content_type: str) -> bool:
    return any(content_type == t or (t.endswith("/") and content_type.startswith(t)) for t in INLINE_TYPES)


@bp.get("/media/<int:media_id>")
@agent_required()
def media(media_id: int):
    item = db.session.get(MediaFile, media_id) or abort(404)
    path = media_service.file_of(item) or abort(404)
    content_type = (item.content_type or "application/octet-stream").lower()
    shown = inline(content_type)
    extension = mimetypes.guess_extension(content_type) or ".bin"
    response = send_file(path, mimetype=content_type if shown else "application/octet-stream",
                         as_attachment=not shown, download_name=f"media-{item.id}{extension}",
                         conditional=True, max_age=0)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.app_template_test("inline_media")
def _inline_media(content_type: str | None) -> bool:
    return inline((content_type or "").lower())
