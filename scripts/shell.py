"""`make shell`: talk to the running assistant from the terminal, through the
same path WhatsApp uses (signed Twilio webhook -> worker -> Rasa -> outbox).

Needs `make run` in another terminal. Replies are read from the development
fake of Twilio's API, exactly what the WhatsApp simulator shows.
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devenv import system_env  # noqa: E402

from bot.phone import to_e164  # noqa: E402
from bot.twilio_whatsapp import sign  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phone", default="+55 11 90000-0001", help="the customer's WhatsApp number")
    parser.add_argument("--name", default="Cliente Teste", help="the WhatsApp profile name")
    parser.add_argument("--wait", type=float, default=4.0, help="seconds to wait for replies")
    args = parser.parse_args()
    env = system_env()
    base = f"http://127.0.0.1:{env['WEB_PORT']}"
    public = env["PUBLIC_BASE_URL"]
    phone = to_e164(args.phone)
    try:
        requests.get(f"{base}/healthz", timeout=3).raise_for_status()
    except requests.RequestException:
        print(f"Nothing answers at {base}: start the system with `make run` first.", file=sys.stderr)
        return 1
    feed = f"{base}/dev/simulator/feed?phone={quote(phone)}"
    seen = max([m["id"] for m in requests.get(feed, timeout=5).json()["messages"]], default=0)
    print(f"Talking as {phone} ({args.name}). Ctrl-D or 'exit' to leave.")
    while True:
        try:
            text = input("você> ").strip()
        except EOFError:
            print()
            return 0
        if text in ("exit", "quit"):
            return 0
        if not text:
            continue
        params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": env.get("TWILIO_ACCOUNT_SID", "AC" + "0" * 32),
                  "From": f"whatsapp:{phone}", "To": env.get("TWILIO_WHATSAPP_FROM", "whatsapp:+14155238886"),
                  "Body": text, "NumMedia": "0", "ProfileName": args.name, "WaId": phone[1:]}
        signature = sign(env["TWILIO_AUTH_TOKEN"], f"{public}/webhooks/twilio/whatsapp", params)
        response = requests.post(f"{base}/webhooks/twilio/whatsapp", data=params, timeout=10,
                                 headers={"X-Twilio-Signature": signature})
        if response.status_code != 200:
            print(f"(webhook answered {response.status_code})")
            continue
        deadline = time.time() + args.wait
        while time.time() < deadline:
            messages = requests.get(f"{feed}&after={seen}", timeout=5).json()["messages"]
            for message in messages:
                seen = max(seen, message["id"])
                if message["direction"] == "out":
                    print(f"bot> {message['body']}")
                    deadline = time.time() + 1.5  # more parts may follow
            time.sleep(0.3)


if __name__ == "__main__":
    sys.exit(main())
