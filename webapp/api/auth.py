"""Agent login for API clients, and a token check."""
from flask import current_app, request
from flask_jwt_extended import current_user

from ..auth import agent_required, agent_token, login_account_limit
from ..extensions import limiter
from ..services import agents
from ..services.errors import Invalid
from . import bp


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("a JSON object body is required")
    return body


def text_field(body: dict, name: str) -> str:
    """A string field of a JSON body ("" when absent); anything else is refused,
    never stored as its Python repr."""
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be text", field=name)
    return value


@bp.post("/auth/login")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"])
@login_account_limit()
def login():
    body = json_body()
    agent = agents.authenticate(str(body.get("email", "")), str(body.get("password", "")))
    if agent is None:
        return {"error": {"code": "invalid_credentials", "message": "invalid email or password"}}, 401
    return {"access_token": agent_token(agent), "agent": agents.to_dict(agent)}


@bp.get("/auth/me")
@agent_required()
def me():
    return {"agent": agents.to_dict(current_user)}


@bp.post("/auth/register")
@agent_required(admin=True)
def register_agent():
    """Admins create agent accounts."""
    body = json_body()
    agent = agents.create(email=str(body.get("email", "")), name=str(body.get("name", "")),
                          password=str(body.get("password", "")), role=str(body.get("role", "agent")))
    return {"agent": agents.to_dict(agent)}, 201
