"""The environment of the development system (shared by `make run` and the tests).

Secrets are generated once per checkout and kept in var/dev-secrets.env
(git-ignored), so a restart keeps agent sessions and emailed links valid.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ZAPDESK_VAR: another var dir (make bench starts `make run` in a temporary one).
VAR = Path(os.environ.get("ZAPDESK_VAR") or ROOT / "var")


def dev_secrets() -> dict[str, str]:
    VAR.mkdir(exist_ok=True)
    path = VAR / "dev-secrets.env"
    if not path.exists():
        path.write_text(f"SECRET_KEY={secrets.token_urlsafe(48)}\n"
                        f"TWILIO_AUTH_TOKEN={secrets.token_hex(16)}\n")
        path.chmod(0o600)
    return dict(line.split("=", 1) for line in path.read_text().split() if "=" in line)


def system_env(*, web_port: int = 5000, rasa_port: int = 5005, actions_port: int = 5055,
               smtp_port: int = 8025, var: Path = VAR, extra: dict | None = None) -> dict[str, str]:
    """Environment for every process of the system, on the embedded default."""
    env = dict(os.environ)
    base = f"http://127.0.0.1:{web_port}"
    defaults = {
        "APP_ENV": "development",
        "DATABASE_URL": f"sqlite:///{var / 'zapdesk.db'}",
        "PUBLIC_BASE_URL": base,
        "TWILIO_API_BASE_URL": f"{base}/dev/twilio",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port),
        "DEV_MAILDIR": str(var / "mailbox"),
        "MEDIA_DIR": str(var / "media"),
        "DEV_TWILIO_MEDIA_DIR": str(var / "dev-twilio-media"),
        "RASA_URL": f"http://127.0.0.1:{rasa_port}",
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{actions_port}/webhook",
        "TRACKER_DB_DIALECT": "sqlite",
        "TRACKER_DB_URL": f"sqlite:///{var / 'rasa_tracker.db'}",
        "WEBAPP_API_URL": f"{base}/api/v1",
        "WEB_PORT": str(web_port), "RASA_PORT": str(rasa_port),
        "ACTIONS_PORT": str(actions_port), "SMTP_PORT": str(smtp_port),
        "FLASK_APP": "webapp.wsgi",
        "PYTHONUNBUFFERED": "1",
        "PYTHONWARNINGS": "ignore",  # Rasa's dependencies print pages of warnings
        "SANIC_HOST": "127.0.0.1",  # the action server listens on loopback only
        # Rasa and TensorFlow: no telemetry, no hub downloads, quiet logs.
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "HF_HUB_OFFLINE": "1",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    for key, value in dev_secrets().items():
        env.setdefault(key, value)
    env.update(extra or {})
    return env
