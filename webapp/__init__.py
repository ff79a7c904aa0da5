"""ZapDesk webapp: REST API, agent UI, status page, Twilio webhooks, worker."""
from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .config import Config, ProductionConfig, check_production
from .extensions import db, jwt, limiter, mail, migrate
from .services import business_hours


def create_app(config: type | dict | None = None) -> Flask:
    app = Flask(__name__)
    base = ProductionConfig if Config.APP_ENV == "production" else Config
    app.config.from_object(base)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)
    if app.config["APP_ENV"] == "production":
        check_production(app.config)
    business_hours.from_config(app.config)  # a schedule that cannot be read stops the start
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_security_headers(app)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The twilio client logs every request and its headers at INFO.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    return app


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.config.get("MIGRATIONS_DIR") or _migrations_dir()))
    jwt.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    from . import auth  # registers the JWT loaders
    auth.init_app(app)
    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)


def _migrations_dir():
    from pathlib import Path
    return Path(__file__).resolve().parent / "migrations"


def register_blueprints(app: Flask) -> None:
    from .agent import bp as agent_bp
    from .api import bp as api_bp
    from .live import bp as live_bp
    from .status_page import bp as status_bp
    from .webhooks import bp as webhooks_bp

    app.register_blueprint(api_bp)
    app.register_blueprint(agent_bp)
    app.register_blueprint(live_bp)
    app.register_blueprint(status_bp)
    app.register_blueprint(webhooks_bp)
    if app.config["DEV_TOOLS"]:
        from .dev import bp as dev_bp
        app.register_blueprint(dev_bp)

    @app.get("/")
    def index():
        from flask import redirect, url_for
        return redirect(url_for("agent.tickets"))

    @app.get("/healthz")
    def healthz():
        db.session.execute(db.text("SELECT 1"))
        return {"status": "ok"}


def register_errorhandlers(app: Flask) -> None:
    from .api.errors import register
    register(app)


def register_commands(app: Flask) -> None:
    from .cli import register
    register(app)


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: https:; style-src 'self'; "
            "script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
        return response


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    # Webapp and worker share the SQLite file: WAL lets readers and one writer
    # work at once, and busy_timeout waits for a lock instead of failing.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
