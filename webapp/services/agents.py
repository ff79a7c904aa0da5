"""Agent accounts."""
from __future__ import annotations

from ..extensions import db
from ..models import Agent
from .customers import clean_email
from .errors import Conflict, Invalid

MIN_PASSWORD = 10
_DUMMY = Agent(password_hash="")  # never added to a session


def to_dict(agent: Agent) -> dict:
    return {"id": agent.id, "email": agent.email, "name": agent.name, "role": agent.role,
            "active": agent.active}


def create(email: str, name: str, password: str, role: str = "agent") -> Agent:
    email = clean_email(email).lower()
    if role not in ("agent", "admin"):
        raise Invalid("role must be agent or admin", field="role")
    if not 0 < len(name.strip()) <= 120:
        raise Invalid("a name of 1 to 120 characters is required", field="name")
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"the password needs at least {MIN_PASSWORD} characters", field="password")
    if db.session.scalar(db.select(Agent).filter_by(email=email)):
        raise Conflict("an agent with this email exists", field="email")
    agent = Agent(email=email, name=name.strip(), role=role)
    agent.set_password(password)
    db.session.add(agent)
    db.session.commit()
    return agent


def authenticate(email: str, password: str) -> Agent | None:
    agent = db.session.scalar(db.select(Agent).filter_by(email=email.strip().lower()))
    if agent is None:
        # Verify against a real hash anyway so an unknown email takes as long.
        if not _DUMMY.password_hash:
            _DUMMY.set_password("not-a-real-password")
        _DUMMY.check_password(password)
        return None
    if not agent.check_password(password) or not agent.active:
        return None
    return agent
