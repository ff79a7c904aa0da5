"""One email over SMTP, with bounded waits and correctly encoded headers.

Built with the standard library's ``email`` package (RFC 2047 for accented
names and subjects, RFC 5322 quoting) and sent with ``smtplib`` under
``MAIL_TIMEOUT``: a server that accepts the connection and never answers
costs one timeout, not a worker thread forever (Flask-Mail opens its SMTP
connection without a timeout).
"""
from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from email_validator import EmailNotValidError, validate_email


def header_text(value: str | None) -> str:
    """One line: a header never carries a line break (no header injection)."""
    return " ".join((value or "").split())


def address(email: str, name: str | None = None) -> Address:
    """An address header value; an internationalised domain goes out as IDNA."""
    try:
        checked = validate_email(email, check_deliverability=False)
        email = checked.ascii_email or checked.normalized
    except EmailNotValidError:
        pass  # the server will refuse it: a visible, permanent failure
    username, _, domain = email.rpartition("@")
    return Address(display_name=header_text(name), username=username, domain=domain)


def sender_address(configured: str) -> Address:
    """``MAIL_DEFAULT_SENDER`` ("Name <addr>" or a bare address) as a header value."""
    name, email = parseaddr(configured)
    return address(email or configured, name)


def build(*, sender: str, to: str, to_name: str | None, subject: str, text: str, html: str | None,
          message_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender_address(sender)
    msg["To"] = address(to, to_name)
    msg["Subject"] = header_text(subject)
    msg["Date"] = formatdate(usegmt=True)
    # The same id on every attempt: a retry after a dropped connection is
    # recognisably the same email to the receiving side.
    msg["Message-ID"] = message_id
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


def send(msg: EmailMessage, cfg: Mapping) -> None:
    """Deliver ``msg`` to the configured SMTP server; raises on any failure."""
    if cfg.get("MAIL_SUPPRESS_SEND", cfg.get("TESTING", False)):
        return
    timeout = float(cfg.get("MAIL_TIMEOUT") or 20)
    smtp_class = smtplib.SMTP_SSL if cfg.get("MAIL_USE_SSL") else smtplib.SMTP
    smtp = smtp_class(cfg["MAIL_SERVER"], int(cfg["MAIL_PORT"]), timeout=timeout)
    try:
        if cfg.get("MAIL_USE_TLS"):
            smtp.starttls(context=ssl.create_default_context())
        if cfg.get("MAIL_USERNAME") and cfg.get("MAIL_PASSWORD"):
            smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"])
        smtp.send_message(msg)
    finally:
        # Once the server said 250 the email is sent: a failed QUIT must not
        # make it look unsent (and be sent again).
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
