"""Flask CLI commands: ``flask create-agent``, ``flask seed-demo``, ``flask kb-seed``,
``flask service-token``, ``flask worker``."""
from __future__ import annotations

import secrets

import click
from flask import Flask, current_app

from .extensions import db
from .models import Agent


def register(app: Flask) -> None:
    @app.cli.command("create-agent")
    @click.option("--email", required=True)
    @click.option("--name", required=True)
    @click.option("--role", type=click.Choice(["agent", "admin"]), default="agent")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    def create_agent(email, name, role, password):
        """Create an agent account."""
        from .services import agents
        from .services.errors import DomainError
        try:
            agent = agents.create(email=email, name=name, password=password, role=role)
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"created {agent.role} {agent.email}")

    @app.cli.command("seed-demo")
    @click.option("--credentials-file", default=None, help="Where to keep the demo password.")
    def seed_demo(credentials_file):
        """Create the demo admin agent once and print its credentials."""
        from pathlib import Path

        from .services import agents
        email = "admin@zapdesk.example"
        path = Path(credentials_file) if credentials_file else None
        existing = db.session.scalar(db.select(Agent).filter_by(email=email))
        if existing is None:
            password = secrets.token_urlsafe(12)
            agents.create(email=email, name="Demo Admin", password=password, role="admin")
            if path:
                path.write_text(f"{email}\n{password}\n")
                path.chmod(0o600)
        elif path and path.exists():
            email, password = path.read_text().split()[:2]
        else:
            password = "(set earlier; use `flask create-agent` to add another)"
        # The demo's knowledge base, once (`flask kb-seed` adds later articles).
        from .services import kb
        seeded = kb.seed_from_files(only_if_empty=True)
        if seeded["created"]:
            click.echo(f"Knowledge base: {seeded['created']} articles", err=True)
        click.echo(f"Demo admin: {email} / {password}")

    @app.cli.command("kb-seed")
    @click.option("--dir", "directory", default=None, help="Folder of *.yml article files (default KB_SEED_DIR).")
    @click.option("--update", is_flag=True, help="Overwrite existing articles that differ from the files.")
    def kb_seed(directory, update):
        """Load the knowledge-base articles (idempotent) and store missing vectors."""
        from .services import kb
        from .services.errors import DomainError
        try:
            counts = kb.seed_from_files(directory, update_existing=update)
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo("knowledge base: {created} created, {updated} updated, {unchanged} unchanged, "
                   "{embedded} vectors computed".format(**counts))

    @app.cli.command("service-token")
    @click.option("--name", default="actions")
    def service_token_cmd(name):
        """Print a service JWT for the action server."""
        from .auth import service_token
        click.echo(service_token(name))

    @app.cli.command("worker")
    def worker_cmd():
        """Process inbound messages and dispatch the outbox."""
        from . import worker
        worker.run(current_app._get_current_object())
