"""REST API, ``/api/v1``."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import auth, customers, tickets  # noqa: E402,F401  (routes register on bp)
