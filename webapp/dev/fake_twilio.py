"""A local stand-in for Twilio's Messages API, at the HTTP boundary.

The real ``twilio`` client builds and sends its request here instead of to
Twilio. Accepted messages appear in the simulator; delivery status callbacks
are posted back, signed, like Twilio does. Inbound media are served like
Twilio serves them: the media URL needs the account's credentials and
redirects to a short-lived signed URL on another host (the "CDN"), which
refuses a request that still carries them. ``FAKE_TWILIO_LATENCY`` slows the
answers down (see ``webapp/config.py``).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from pathlib import Path

import requests
from flask import abort, current_app, redirect, request, send_file, url_for

from bot.text import wa_length
from bot.twilio_whatsapp import sign

from ..extensions import db, limiter
from ..models import SimulatedMessage, utcnow
from . import bp


def _check_auth(account_sid: str) -> None:
    cfg = current_app.config
    expected = base64.b64encode(f"{cfg['TWILIO_ACCOUNT_SID']}:{cfg['TWILIO_AUTH_TOKEN']}".encode()).decode()
    given = request.headers.get("Authorization", "").removeprefix("Basic ")
    if account_sid != cfg["TWILIO_ACCOUNT_SID"] or not hmac.compare_digest(given, expected):
        abort(401)


def _twilio_error(status: int, code: int, message: str):
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}, status


@bp.post("/twilio/2010-04-01/Accounts/<account_sid>/Messages.json")
@limiter.exempt
def create_message(account_sid):
    _check_auth(account_sid)
    form = request.form
    to, from_ = form.get("To", ""), form.get("From", "")
    if not to.startswith("whatsapp:+") or not from_.startswith("whatsapp:+"):
        return _twilio_error(400, 21211, "Invalid 'To' or 'From' WhatsApp address")
    body = form.get("Body", "")
    if not body and not form.get("ContentSid"):
        return _twilio_error(400, 21619, "A text message body or media URL is required")
    if wa_length(body) > 1600:  # Twilio counts UTF-16 units: an emoji is two
        return _twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit")
    # Recorded after the delay, as if accepted then: parts sent in parallel
    # would land out of order here, as they could on WhatsApp.
    time.sleep(latency(to))
    row = SimulatedMessage(sid="SM" + uuid.uuid4().hex, direction="out", to=to, from_=from_, body=body,
                           content_sid=form.get("ContentSid"), status_callback=form.get("StatusCallback"))
    db.session.add(row)
    db.session.commit()
    if row.status_callback and current_app.config.get("FAKE_TWILIO_CALLBACKS", True):
        threading.Thread(target=_post_callbacks, daemon=True,
                         args=(current_app.config["TWILIO_AUTH_TOKEN"], row.status_callback,
                               current_app.config["PUBLIC_BASE_URL"], request.url_root, row.sid,
                               account_sid, to, from_)).start()
    now = utcnow().strftime("%a, %d %b %Y %H:%M:%S +0000")
    return {
        "sid": row.sid, "account_sid": account_sid, "to": to, "from": from_, "body": body,
        "status": "queued", "direction": "outbound-api", "num_segments": "1", "num_media": "0",
        "date_created": now, "date_updated": now, "date_sent": None, "error_code": None,
        "error_message": None, "price": None, "api_version": "2010-04-01",
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{row.sid}.json",
    }, 201


def _post_callbacks(auth_token, callback_url, public_base, url_root, sid, account_sid, to, from_):
    # Signed on the public URL (as Twilio does), delivered to this server's own address.
    local_url = callback_url
    if callback_url.startswith(public_base):
        local_url = url_root.rstrip("/") + callback_url[len(public_base):]
    for status in ("sent", "delivered"):
        time.sleep(0.3)
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": account_sid,
                  "To": to, "From": from_, "ApiVersion": "2010-04-01"}
        try:
            requests.post(local_url, data=params, timeout=5,
                          headers={"X-Twilio-Signature": sign(auth_token, callback_url, params)})
        except requests.RequestException:
            return


def latency(to: str) -> float:
    """Seconds to wait before answering a send to ``to``: ``FAKE_TWILIO_LATENCY``
    is "0.2", a range "0.05-0.4", and per number "…;whatsapp:+55…=3"."""
    spec = current_app.config.get("FAKE_TWILIO_LATENCY") or ""
    default, per_number = "0", {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        number, equals, value = part.rpartition("=")
        if equals:
            per_number[number.strip()] = value
        else:
            default = part
    low, _, high = per_number.get(to, default).partition("-")
    low_s = float(low or 0)
    return random.uniform(low_s, float(high)) if high else low_s


# -- media --------------------------------------------------------------------

def _media_dir() -> Path:
    path = Path(current_app.config["DEV_TWILIO_MEDIA_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cdn_signature(media_sid: str, expires: str) -> str:
    key = current_app.config["TWILIO_AUTH_TOKEN"].encode()
    return hmac.new(key, f"{media_sid}:{expires}".encode(), hashlib.sha256).hexdigest()


@bp.post("/twilio/media")
@limiter.exempt
def upload_media():
    """Put a file where a fake media URL serves it (what the customer's phone
    uploads to Twilio). Returns the URL and content type to use in a webhook."""
    upload = request.files.get("file")
    if upload is None:
        abort(400, "a file is required")
    content_type = request.form.get("content_type") or upload.mimetype or "application/octet-stream"
    media_sid, message_sid = "ME" + uuid.uuid4().hex, request.form.get("message_sid") or "MM" + uuid.uuid4().hex
    folder = _media_dir()
    upload.save(folder / media_sid)
    (folder / f"{media_sid}.json").write_text(json.dumps({"content_type": content_type}))
    account = current_app.config["TWILIO_ACCOUNT_SID"]
    base = current_app.config["TWILIO_API_BASE_URL"] or request.url_root.rstrip("/") + "/dev/twilio"
    url = f"{base.rstrip('/')}/2010-04-01/Accounts/{account}/Messages/{message_sid}/Media/{media_sid}"
    return {"url": url, "content_type": content_type, "sid": media_sid}, 201


@bp.get("/twilio/2010-04-01/Accounts/<account_sid>/Messages/<message_sid>/Media/<media_sid>")
@limiter.exempt
def media(account_sid, message_sid, media_sid):
    _check_auth(account_sid)
    forced = current_app.config.get("FAKE_TWILIO_MEDIA_STATUS")  # tests: make Twilio fail
    if forced:
        return _twilio_error(int(forced), 20500, "Internal Server Error")
    if not media_sid.isalnum() or not (_media_dir() / media_sid).is_file():
        return _twilio_error(404, 20404, f"The requested resource {request.path} was not found")
    expires = str(int(time.time()) + 300)
    target = url_for("dev.media_cdn", media_sid=media_sid, Expires=expires,
                     Signature=_cdn_signature(media_sid, expires))
    # Another host name for the same server, as Twilio's CDN is another host:
    # the client must drop the Authorization header on the way.
    host = request.host
    other = host.replace("127.0.0.1", "localhost") if "127.0.0.1" in host else host.replace("localhost", "127.0.0.1")
    return redirect(f"{request.scheme}://{other}{target}", code=307)


@bp.get("/twilio-cdn/<media_sid>")
@limiter.exempt
def media_cdn(media_sid):
    if request.headers.get("Authorization"):
        abort(400, "Only one auth mechanism allowed")  # what S3 says to a leaked Basic header
    expires = request.args.get("Expires", "")
    signature = _cdn_signature(media_sid, expires)
    if not expires.isdigit() or int(expires) < time.time() or not hmac.compare_digest(
            signature, request.args.get("Signature", "")):
        abort(403)
    folder = _media_dir()
    if not media_sid.isalnum() or not (folder / media_sid).is_file():
        abort(404)
    content_type = json.loads((folder / f"{media_sid}.json").read_text())["content_type"]
    return send_file(folder / media_sid, mimetype=content_type)
