"""The development mailbox: what the local SMTP catcher received."""
from __future__ import annotations

import mailbox
import re
from email import policy
from email.parser import BytesParser

from flask import abort, current_app, render_template

from . import bp
from .mailcatcher import keys_oldest_first, open_maildir

URL = re.compile(r"https?://[^\s<>\"]+")


def _box() -> mailbox.Maildir:
    return open_maildir(current_app.config["DEV_MAILDIR"])


def _parse(raw) -> dict:
    msg = BytesParser(policy=policy.default).parsebytes(raw.as_bytes())
    text = msg.get_body(preferencelist=("plain",))
    body = text.get_content() if text else ""
    return {"subject": msg["subject"], "to": msg["to"], "from": msg["from"], "date": msg["date"],
            "body": body, "links": URL.findall(body)}


@bp.get("/mailbox")
def mailbox_index():
    box = _box()
    items = [(key, _parse(box[key])) for key in reversed(keys_oldest_first(box))]
    return render_template("dev/mailbox.html", items=items)


@bp.get("/mailbox/<key>")
def mailbox_message(key):
    box = _box()
    if key not in box:
        abort(404)
    return render_template("dev/mail.html", key=key, mail=_parse(box[key]))
