"""WSGI entry point: ``gunicorn webapp.wsgi:app``."""
from . import create_app

app = create_app()
if app.config["KB_PRELOAD"]:
    # The web process answers the assistant's knowledge-base searches: load the model now.
    from .services.kb_index import preload_in_background
    preload_in_background(app)
