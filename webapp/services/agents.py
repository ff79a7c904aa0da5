"""Agent accounts: creation, sign-in, and what admins change (role, access, password).

Rules kept here, for the admin pages, the API and the CLI alike: there is
always at least one active admin, and an admin never removes their own access
or admin role. Ending access (deactivation, password reset, logout) bumps
``token_version``, which every request checks: the agent's sessions end at once.
"""
from __future__ import annotations

from ..extensions import db
from ..models import Agent
from .customers import clean_email
from .errors import Conflict, Forbidden, Invalid, NotFound

MIN_PASSWORD = 10
MAX_PASSWORD = 512  # argon2 hashes any length; this only bounds the work per attempt
ROLES = ("agent", "admin")
_DUMMY = Agent(password_hash="")  # never added to a session


def to_dict(agent: Agent) -> dict:
    return {"id": agent.id, "email": agent.email, "name": agent.name, "role": agent.role,
            "active": agent.active}


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"the password needs at least {MIN_PASSWORD} characters", field="password")
    if len(password) > MAX_PASSWORD:
        raise Invalid(f"the password is limited to {MAX_PASSWORD} characters", field="password")


def create(email: str, name: str, password: str, role: str = "agent") -> Agent:
    email = clean_email(email).lower()
    if role not in ROLES:
        raise Invalid("role must be agent or admin", field="role")
    if not 0 < len(name.strip()) <= 120:
        raise Invalid("a name of 1 to 120 characters is required", field="name")
    _check_password(password)
    if db.session.scalar(db.select(Agent).filter_by(email=email)):
        raise Conflict("an agent with this email exists", field="email")
    agent = Agent(email=email, name=name.strip(), role=role)
    agent.set_password(password)
    db.session.add(agent)
    db.session.commit()
    return agent


def authenticate(email: str, password: str) -> Agent | None:
    """The agent, or None; the caller says only "invalid email or password",
    whether the email is unknown, the account inactive or the password wrong."""
    agent = db.session.scalar(db.select(Agent).filter_by(email=email.strip().lower()))
    if agent is None or len(password) > MAX_PASSWORD:
        # Verify against a real hash anyway so an unknown email takes as long.
        if not _DUMMY.password_hash:
            _DUMMY.set_password("not-a-real-password")
        _DUMMY.check_password(password[:MAX_PASSWORD])
        return None
    if not agent.check_password(password) or not agent.active:
        return None
    return agent


def get(agent_id: int) -> Agent:
    agent = db.session.get(Agent, agent_id)
    if agent is None:
        raise NotFound("agent not found")
    return agent


def list_all() -> list[Agent]:
    return list(db.session.scalars(db.select(Agent).order_by(Agent.active.desc(), Agent.name, Agent.id)))


def end_sessions(agent: Agent) -> None:
    """Invalidate every token issued to ``agent`` so far (in the caller's transaction)."""
    agent.token_version += 1


def logout(agent: Agent) -> None:
    """Sign out: this browser and every other session of the agent."""
    end_sessions(agent)
    db.session.commit()


def _lock_admins() -> list[Agent]:
    # Two admins demoting each other at once must not both pass the "another
    # admin remains" check: FOR UPDATE on PostgreSQL; SQLite has none, so take
    # its write lock first, which makes the read below current.
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(db.text("UPDATE agents SET role = role WHERE 0"))
    return list(db.session.scalars(db.select(Agent).filter_by(role="admin", active=True)
                                   .order_by(Agent.id).with_for_update()))


def _keep_an_admin(actor: Agent, agent: Agent, what: str) -> None:
    if agent.id == actor.id:
        raise Forbidden(f"you cannot {what} your own account; ask another admin")
    if agent.is_admin and agent.active and not [a for a in _lock_admins() if a.id != agent.id]:
        raise Conflict(f"cannot {what} the last active admin")


def set_role(actor: Agent, agent: Agent, role: str) -> Agent:
    """Make ``agent`` an admin or an agent (takes effect on their next request)."""
    if role not in ROLES:
        raise Invalid("role must be agent or admin", field="role")
    if role == agent.role:
        return agent
    if role != "admin":
        _keep_an_admin(actor, agent, "remove the admin role of")
    agent.role = role
    db.session.commit()
    return agent


def deactivate(actor: Agent, agent: Agent) -> Agent:
    """No more sign-ins, and every open session of ``agent`` ends now."""
    if not agent.active:
        return agent
    _keep_an_admin(actor, agent, "deactivate")
    agent.active = False
    end_sessions(agent)
    db.session.commit()
    return agent


def reactivate(actor: Agent, agent: Agent) -> Agent:
    agent.active = True
    db.session.commit()
    return agent


def reset_password(actor: Agent, agent: Agent, password: str) -> Agent:
    """Set a new password chosen by an admin; the agent's sessions end."""
    _check_password(password)
    agent.set_password(password)
    end_sessions(agent)
    db.session.commit()
    return agent


def change_own_password(agent: Agent, current: str, new: str) -> Agent:
    """The agent changes their password; other sessions end (the caller renews this one)."""
    if not agent.check_password(current):
        raise Invalid("the current password is wrong", field="current_password")
    _check_password(new)
    agent.set_password(new)
    end_sessions(agent)
    db.session.commit()
    return agent
