"""Development tools, registered only when DEV_TOOLS is on (never in production):
the WhatsApp simulator, a fake of Twilio's Messages API and the dev mailbox."""
from flask import Blueprint

bp = Blueprint("dev", __name__, url_prefix="/dev")

from . import fake_twilio, mailbox, simulator  # noqa: E402,F401  (routes register on bp)
