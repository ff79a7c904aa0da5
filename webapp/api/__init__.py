"""REST API, ``/api/v1``."""
from flask import Blueprint, current_app

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/")
def index():
    """What the API offers (every route needs a JWT: agent or service)."""
    routes = sorted(f"{','.join(sorted(r.methods - {'HEAD', 'OPTIONS'}))} {r.rule}"
                    for r in current_app.url_map.iter_rules()
                    if r.endpoint.startswith("api.") and r.endpoint != "api.index")
    return {"name": "ZapDesk API", "version": "v1", "auth": "Authorization: Bearer <JWT>", "routes": routes}

from . import auth, closing, customers, kb, tickets  # noqa: E402,F401  (routes register on bp)
