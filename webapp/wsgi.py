"""WSGI entry point: ``gunicorn webapp.wsgi:app``."""
from dotenv import find_dotenv, load_dotenv

from . import create_app

# The same .env that `flask` commands (the worker, db upgrade) read, so the web
# process and the worker never run on different settings; variables already
# set in the environment win.
load_dotenv(find_dotenv(usecwd=True))
app = create_app()
if app.config["KB_PRELOAD"]:
    # The web process answers the assistant's knowledge-base searches: load the model now.
    from .services.kb_index import preload_in_background
    preload_in_background(app)
