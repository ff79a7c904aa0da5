"""Customer-facing texts outside Rasa: per-language templates under
``templates/messages/<lang>/`` and ``templates/email/<lang>/``."""
from __future__ import annotations

from flask import current_app, render_template

LANGUAGES = ("pt", "en")

STATUS_LABELS = {
    "pt": {"new": "Novo", "open": "Em atendimento", "in_progress": "Em atendimento",
           "pending": "Aguardando você",
           "resolved": "Resolvido", "closed": "Fechado"},
    "en": {"new": "New", "open": "In progress", "in_progress": "In progress",
           "pending": "Waiting for you",
           "resolved": "Resolved", "closed": "Closed"},
}


def lang_or_default(lang: str | None) -> str:
    return lang if lang in LANGUAGES else "pt"


def status_label(status: str, lang: str | None) -> str:
    return STATUS_LABELS[lang_or_default(lang)].get(status, status)


def render_text(template: str, lang: str | None, **context) -> str:
    lang = lang_or_default(lang)
    context.setdefault("company", current_app.config["COMPANY_NAME"])
    context.setdefault("status_label", lambda s: status_label(s, lang))
    return render_template(f"messages/{lang}/{template}.txt", **context).strip()


def render_email(template: str, lang: str | None, **context) -> tuple[str, str, str]:
    """Return (subject, text, html) of an email template."""
    lang = lang_or_default(lang)
    context.setdefault("company", current_app.config["COMPANY_NAME"])
    context.setdefault("status_label", lambda s: status_label(s, lang))
    subject = render_template(f"email/{lang}/{template}.subject.txt", **context).strip()
    text = render_template(f"email/{lang}/{template}.txt", **context).strip()
    html = render_template(f"email/{lang}/{template}.html", **context)
    return subject, text, html
