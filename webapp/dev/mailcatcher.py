"""A local SMTP server (aiosmtpd) that keeps every message in a Maildir.

``python -m webapp.dev.mailcatcher --port 8025 --maildir var/mailbox``
"""
from __future__ import annotations

import argparse
import mailbox
import re
import signal
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


def open_maildir(path: str | Path) -> mailbox.Maildir:
    """A Maildir at ``path``, creating its tmp/new/cur folders even when the
    folder itself already exists (mailbox only creates them for a new folder)."""
    for sub in ("tmp", "new", "cur"):
        (Path(path) / sub).mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(str(path), factory=None, create=False)


def delivery_order(key: str) -> tuple:
    """Sort key for Maildir keys ('<seconds>.M<microseconds>P<pid>Q<n>.<host>'):
    the microseconds are not zero-padded, so plain string order is wrong."""
    match = re.match(r"(\d+)\.M(\d+)P(\d+)Q(\d+)", key)
    return tuple(int(g) for g in match.groups()) if match else (0, 0, 0, 0)


def keys_oldest_first(box: mailbox.Maildir) -> list[str]:
    return sorted(box.keys(), key=delivery_order)


class MaildirHandler:
    def __init__(self, path: str | Path):
        self.box = open_maildir(path)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.box.add(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def start(port: int, maildir: str | Path, host: str = "127.0.0.1") -> Controller:
    controller = Controller(MaildirHandler(maildir), hostname=host, port=port)
    controller.start()
    return controller


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--maildir", default="var/mailbox")
    args = parser.parse_args()
    controller = start(args.port, args.maildir, args.host)
    print(f"mail catcher listening on {args.host}:{args.port}, saving to {args.maildir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
