"""Agent accounts and sessions: login (CSRF, rate limits, generic errors),
cookies, silent renewal, logout and deactivation that end sessions at once,
admin-only pages and the rules that keep an admin around."""
import re
import threading
from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token, create_refresh_token

from webapp.extensions import db
from webapp.models import Agent, Message, Ticket
from webapp.services import agents, customers, tickets

from ..conftest import csrf_of, inbound_params, login, signed_post

PASSWORD = "correct horse battery"


@pytest.fixture
def admin(make_agent):
    return make_agent(email="boss@example.com", name="Bia Boss", role="admin")


@pytest.fixture
def admin_client(app, admin):
    client = app.test_client()
    assert login(client, admin.email, PASSWORD).status_code == 302
    client.agent = admin
    return client


@pytest.fixture
def config(app):
    """Change app settings for one test."""
    saved = {}

    def set_(**values):
        for key, value in values.items():
            saved.setdefault(key, app.config.get(key))
            app.config[key] = value
    yield set_
    app.config.update(saved)


def set_cookies(response) -> dict[str, str]:
    return {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}


def error_of(response) -> str:
    match = re.search(r'role="alert">([^<]+)<', response.get_data(as_text=True))
    return match.group(1) if match else ""


# --- login -----------------------------------------------------------------

def test_login_form_carries_a_login_csrf_token_tied_to_a_cookie(client):
    response = client.get("/agent/login")
    cookie = set_cookies(response)["login_csrf"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/agent/login" in cookie
    assert re.search(r'name="csrf_token" value="[^"]{20,}"', response.get_data(as_text=True))


@pytest.mark.parametrize("tamper", ["missing", "forged", "other_browser"])
def test_login_without_a_valid_login_csrf_token_is_refused(app, client, make_agent, tamper):
    make_agent()
    if tamper == "other_browser":
        # Another site fetched its own form and token, then posts it from the victim's browser.
        attacker = app.test_client()
        token = re.search(r'name="csrf_token" value="([^"]+)"',
                          attacker.get("/agent/login").get_data(as_text=True)).group(1)
        client.get("/agent/login")
    else:
        client.get("/agent/login")
        token = {"missing": "", "forged": "eyJub25jZSI6IngifQ.abc.def"}[tamper]
    response = client.post("/agent/login", data={"email": "ana@example.com", "password": PASSWORD,
                                                 "csrf_token": token})
    assert response.status_code == 403
    assert "access_token_cookie" not in set_cookies(response)
    assert error_of(response) == "This sign-in form had expired. Please sign in again."


def test_wrong_password_unknown_email_and_inactive_account_get_the_same_answer(client, make_agent):
    agent = make_agent()
    make_agent(email="gone@example.com", name="Gone")
    gone = db.session.scalar(db.select(Agent).filter_by(email="gone@example.com"))
    gone.active = False
    db.session.commit()
    answers = [login(client, email, password) for email, password in
               [(agent.email, "wrong password"), ("nobody@example.com", PASSWORD), ("gone@example.com", PASSWORD)]]
    assert {r.status_code for r in answers} == {401}
    assert {error_of(r) for r in answers} == {"Invalid email or password."}
    assert all("access_token_cookie" not in set_cookies(r) for r in answers)


def test_login_sets_session_cookies_with_their_flags(app, client, make_agent, config):
    make_agent()
    response = login(client, "ANA@example.com ", PASSWORD)
    assert response.status_code == 302 and response.location == "/agent/"
    cookies = set_cookies(response)
    for name in ("access_token_cookie", "refresh_token_cookie"):
        assert "HttpOnly" in cookies[name] and "SameSite=Lax" in cookies[name]
    assert "Path=/;" in cookies["access_token_cookie"] + ";"
    assert "Path=/agent" in cookies["refresh_token_cookie"]  # never sent to the API or other paths
    assert "HttpOnly" not in cookies["csrf_access_token"]  # double submit: the page may read it
    assert "Secure" not in cookies["access_token_cookie"]  # plain http for local development
    config(JWT_COOKIE_SECURE=True)
    secure = set_cookies(login(app.test_client(), "ana@example.com", PASSWORD))
    assert all("Secure" in secure[n] for n in ("access_token_cookie", "refresh_token_cookie", "csrf_access_token"))


@pytest.mark.parametrize("target,expected", [
    ("//evil.example.com/", "/agent/"), ("https://evil.example.com/agent", "/agent/"),
    ("/agent\\@evil.example.com", "/agent/"), ("/agent/tickets/7?x=1", "/agent/tickets/7?x=1")])
def test_login_only_returns_to_local_agent_pages(client, make_agent, target, expected):
    make_agent()
    assert login(client, "ana@example.com", PASSWORD, next=target).location == expected


def test_login_is_rate_limited_per_address(client, make_agent, config):
    make_agent()
    config(LOGIN_RATE_LIMIT="3 per minute")
    statuses = [login(client, "ana@example.com", "wrong password").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    blocked = login(client, "ana@example.com", PASSWORD)  # even the right password waits
    assert blocked.status_code == 429 and "access_token_cookie" not in set_cookies(blocked)
    assert error_of(blocked) == "Too many sign-in attempts. Wait a few minutes and try again."
    other = login(client.application.test_client(), "ana@example.com", PASSWORD)
    assert other.status_code == 429  # same address (the test client's)


def test_failed_logins_are_limited_per_account_from_any_address(app, make_agent, config):
    make_agent()
    config(LOGIN_ACCOUNT_RATE_LIMIT="3 per hour")

    def attempt(password, ip):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = ip
        return login(client, "ana@example.com", password).status_code

    # Successful sign-ins do not count.
    assert [attempt(PASSWORD, "10.0.0.1") for _ in range(4)] == [302] * 4
    assert [attempt("guess", f"10.0.1.{i}") for i in range(3)] == [401] * 3
    assert attempt("guess", "10.0.2.1") == 429
    assert attempt(PASSWORD, "10.0.2.2") == 429
    # Another account is not affected.
    make_agent(email="bia@example.com", name="Bia")
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.0.3.1"
    assert login(client, "bia@example.com", PASSWORD).status_code == 302


def test_failed_api_logins_count_against_the_same_account_limit(app, make_agent, config):
    make_agent()
    config(LOGIN_ACCOUNT_RATE_LIMIT="3 per hour")

    def api(password, ip):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = ip
        return client.post("/api/v1/auth/login", json={"email": "ANA@example.com", "password": password})

    assert [api("guess", f"10.1.0.{i}").status_code for i in range(2)] == [401, 401]
    form = app.test_client()
    form.environ_base["REMOTE_ADDR"] = "10.1.1.1"
    assert login(form, "ana@example.com", "guess").status_code == 401
    blocked = api(PASSWORD, "10.1.2.1")
    assert blocked.status_code == 429 and "access_token" not in (blocked.json or {})
    assert login(form, "ana@example.com", PASSWORD).status_code == 429


def test_rate_limits_are_shared_through_redis_when_configured(tmp_path):
    """Run in a separate process: the limiter's storage is process-wide."""
    import os
    import subprocess
    import sys
    import uuid

    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    email = f"{uuid.uuid4().hex}@example.com"
    prefix = f"zapdesk-test-{uuid.uuid4().hex}"
    script = f"""
import os, re
from webapp import create_app
from webapp.extensions import db, limiter
from webapp.services import agents
app = create_app({{"SQLALCHEMY_DATABASE_URI": "sqlite:///" + os.environ["DB_FILE"], "LOGIN_RATE_LIMIT": "2 per minute",
                  "RATELIMIT_KEY_PREFIX": "{prefix}"}})
with app.app_context():
    db.create_all()
    agents.create("{email}", "R", "correct horse battery")
    print(type(limiter.storage).__name__)
for _ in range(3):
    client = app.test_client()
    page = client.get("/agent/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {{"email": "{email}", "password": "wrong", "csrf_token": token}}
    print(client.post("/agent/login", data=form).status_code)
"""
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

    def process(db_file):
        env = {**os.environ, "REDIS_URL": url, "RATELIMIT_STORAGE_URI": "", "DB_FILE": str(tmp_path / db_file)}
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                              cwd=root)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    try:
        assert process("one.db") == ["RedisStorage", "401", "401", "429"]
        # A second process (another gunicorn worker, say) shares the counters.
        assert process("two.db") == ["RedisStorage", "429", "429", "429"]
        assert list(redis.Redis.from_url(url).scan_iter(f"*{prefix}*"))
    finally:
        store = redis.Redis.from_url(url)
        for key in store.scan_iter(f"*{prefix}*"):
            store.delete(key)


# --- CSRF on state-changing requests -------------------------------------

@pytest.fixture
def ticket(ctx, client):
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("meu pedido"))
    ticket, _ = tickets.create(customers.get_by_phone("5511988887777"), "Pedido", "quebrado")
    return ticket


@pytest.mark.parametrize("csrf", [None, "wrong"])
def test_state_changes_without_the_csrf_token_are_refused_and_change_nothing(agent_client, admin_client,
                                                                          ticket, csrf):
    data = {} if csrf is None else {"csrf_token": csrf}
    posts = [
        (agent_client, f"/agent/tickets/{ticket.id}/reply", {"body": "oi", "reply_key": "k1"}),
        (agent_client, f"/agent/tickets/{ticket.id}/note", {"body": "nota"}),
        (agent_client, f"/agent/tickets/{ticket.id}/status", {"status": "open"}),
        (agent_client, "/agent/logout", {}),
        (admin_client, "/agent/admin/agents", {"email": "x@example.com", "name": "X", "password": PASSWORD}),
        (admin_client, f"/agent/admin/agents/{agent_client.agent.id}/deactivate", {}),
        (admin_client, f"/agent/admin/agents/{agent_client.agent.id}/password", {"password": "x" * 12}),
    ]
    for client, path, form in posts:
        response = client.post(path, data={**form, **data})
        assert response.status_code == 403, path
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count()).select_from(Message).filter_by(author="agent")) == 0
    assert db.session.get(Ticket, ticket.id).status == "new"
    assert db.session.scalar(db.select(db.func.count()).select_from(Agent)) == 2
    agent = db.session.get(Agent, agent_client.agent.id)
    assert agent.active and agent.token_version == 0 and agent.check_password(PASSWORD)
    assert agent_client.get("/agent/").status_code == 200  # still signed in


def test_the_csrf_header_works_too(agent_client, ticket):
    response = agent_client.post(f"/agent/tickets/{ticket.id}/note", data={"body": "via header"},
                                 headers={"X-CSRF-TOKEN": csrf_of(agent_client)})
    assert response.status_code == 302
    assert ticket.events.filter_by(kind="note").one().body == "via header"


def test_api_bearer_tokens_need_no_csrf_but_cookies_on_the_api_do(app, client, make_agent, ticket):
    make_agent()
    browser = app.test_client()
    login(browser, "ana@example.com", PASSWORD)
    forged = browser.patch(f"/api/v1/tickets/{ticket.id}", json={"status": "open"})
    assert forged.status_code == 403 and forged.json["error"]["code"] == "csrf_failed"
    assert db.session.get(Ticket, ticket.id).status == "new"
    token = client.post("/api/v1/auth/login", json={"email": "ana@example.com", "password": PASSWORD}).json
    bearer = client.patch(f"/api/v1/tickets/{ticket.id}", json={"status": "open"},
                          headers={"Authorization": f"Bearer {token['access_token']}"})
    assert bearer.status_code == 200, bearer.json
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "open"


# --- logout, renewal, deactivation ---------------------------------------

def cookies_of(client) -> dict[str, str]:
    return {name: client.get_cookie(name, path=path).value
            for name, path in (("access_token_cookie", "/"), ("csrf_access_token", "/"),
                               ("refresh_token_cookie", "/agent"))}


def replay(app, stolen: dict[str, str]):
    """A browser that only has a copy of the cookies."""
    thief = app.test_client()
    thief.set_cookie("access_token_cookie", stolen["access_token_cookie"], path="/")
    thief.set_cookie("csrf_access_token", stolen["csrf_access_token"], path="/")
    thief.set_cookie("refresh_token_cookie", stolen["refresh_token_cookie"], path="/agent")
    return thief


def test_logout_ends_the_session_even_for_a_copied_cookie(app, agent_client):
    stolen = cookies_of(agent_client)
    assert replay(app, stolen).get("/agent/").status_code == 200
    response = agent_client.post("/agent/logout", data={"csrf_token": csrf_of(agent_client)})
    assert response.status_code == 302 and response.location == "/agent/login"
    cleared = set_cookies(response)
    assert cleared["access_token_cookie"].startswith("access_token_cookie=;")
    assert cleared["refresh_token_cookie"].startswith("refresh_token_cookie=;")
    thief = replay(app, stolen)
    page = thief.get("/agent/")
    assert page.status_code == 302 and page.location.startswith("/agent/login")
    assert "access_token_cookie" not in set_cookies(page)  # the refresh token is dead too
    assert thief.post("/agent/tickets/1/note", data={"body": "x", "csrf_token": stolen["csrf_access_token"]}
                      ).status_code == 302


def expired_access_cookie(client, agent, csrf: str) -> None:
    token = create_access_token(identity=str(agent.id), expires_delta=timedelta(seconds=-5),
                                additional_claims={"typ": "agent", "ver": agent.token_version, "csrf": csrf})
    client.set_cookie("access_token_cookie", token, path="/")


def test_an_expired_access_token_is_renewed_silently_for_page_views(app, agent_client):
    with app.test_request_context():
        expired_access_cookie(agent_client, agent_client.agent, csrf_of(agent_client))
    response = agent_client.get("/agent/?status=all")
    assert response.status_code == 302 and response.location == "/agent/?status=all"
    assert "access_token_cookie" in set_cookies(response)
    assert agent_client.get(response.location).status_code == 200


def test_a_form_posted_with_an_expired_access_token_is_repeated_after_renewal(app, agent_client, ticket):
    csrf = csrf_of(agent_client)
    with app.test_request_context():
        expired_access_cookie(agent_client, agent_client.agent, csrf)
    response = agent_client.post(f"/agent/tickets/{ticket.id}/note", data={"body": "kept", "csrf_token": csrf})
    assert response.status_code == 307  # the browser posts the same form again
    assert csrf_of(agent_client) == csrf  # forms on other open pages stay valid
    again = agent_client.post(response.location, data={"body": "kept", "csrf_token": csrf})
    assert again.status_code == 302
    assert ticket.events.filter_by(kind="note").one().body == "kept"


def test_renewal_checks_csrf_and_the_agent(app, agent_client, ticket):
    agent = agent_client.agent
    with app.test_request_context():
        expired_access_cookie(agent_client, agent, csrf_of(agent_client))
    assert agent_client.post(f"/agent/tickets/{ticket.id}/note",
                             data={"body": "x", "csrf_token": "wrong"}).status_code == 403
    assert ticket.events.filter_by(kind="note").count() == 0
    agent.active = False
    db.session.commit()
    response = agent_client.get("/agent/")
    assert response.status_code == 302 and response.location.startswith("/agent/login")


def test_an_expired_refresh_token_means_signing_in_again(app, agent_client):
    agent = agent_client.agent
    with app.test_request_context():
        claims = {"typ": "agent", "ver": agent.token_version, "csrf": csrf_of(agent_client)}
        refresh = create_refresh_token(identity=str(agent.id), expires_delta=timedelta(seconds=-5),
                                       additional_claims=claims)
        agent_client.set_cookie("refresh_token_cookie", refresh, path="/agent")
        expired_access_cookie(agent_client, agent, claims["csrf"])
    response = agent_client.get("/agent/")
    assert response.status_code == 302 and response.location.startswith("/agent/login")


def test_api_tokens_are_not_renewed_from_cookies(app, client, make_agent):
    agent = make_agent()
    with app.test_request_context():
        token = create_access_token(identity=str(agent.id), expires_delta=timedelta(seconds=-5),
                                    additional_claims={"typ": "agent", "ver": 0})
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"


def test_deactivating_an_agent_ends_their_sessions_at_once(app, admin_client, agent_client):
    agent = agent_client.agent
    api_token = app.test_client().post("/api/v1/auth/login", json={"email": agent.email, "password": PASSWORD}
                                       ).json["access_token"]
    assert agent_client.get("/agent/").status_code == 200
    response = admin_client.post(f"/agent/admin/agents/{agent.id}/deactivate",
                                 data={"csrf_token": csrf_of(admin_client)})
    assert response.status_code == 302
    assert agent_client.get("/agent/").status_code == 302
    assert app.test_client().get("/api/v1/auth/me", headers={"Authorization": f"Bearer {api_token}"}
                                 ).status_code == 401
    assert error_of(login(app.test_client(), agent.email, PASSWORD)) == "Invalid email or password."
    admin_client.post(f"/agent/admin/agents/{agent.id}/reactivate", data={"csrf_token": csrf_of(admin_client)})
    assert agent_client.get("/agent/").status_code == 302  # old sessions stay ended
    assert login(app.test_client(), agent.email, PASSWORD).status_code == 302


# --- admin pages and rules -----------------------------------------------

def test_admin_pages_are_forbidden_to_agents(agent_client, admin):
    page = agent_client.get("/agent/admin/agents")
    assert page.status_code == 403 and "Admins only" in page.get_data(as_text=True)
    csrf = csrf_of(agent_client)
    for path, form in [("/agent/admin/agents", {"email": "x@example.com", "name": "X", "password": PASSWORD}),
                       (f"/agent/admin/agents/{admin.id}/role", {"role": "agent"}),
                       (f"/agent/admin/agents/{admin.id}/deactivate", {}),
                       (f"/agent/admin/agents/{admin.id}/password", {"password": "y" * 12})]:
        assert agent_client.post(path, data={**form, "csrf_token": csrf}).status_code == 403, path
    db.session.expire_all()
    boss = db.session.get(Agent, admin.id)
    assert boss.is_admin and boss.active and boss.check_password(PASSWORD)
    assert db.session.scalar(db.select(db.func.count()).select_from(Agent)) == 2
    assert "/agent/admin/agents" not in agent_client.get("/agent/").get_data(as_text=True)


def test_admin_creates_an_agent_changes_role_and_resets_the_password(app, admin_client):
    csrf = csrf_of(admin_client)
    page = admin_client.get("/agent/admin/agents").get_data(as_text=True)
    assert "Bia Boss" in page and "Add an agent" in page
    response = admin_client.post("/agent/admin/agents", data={
        "csrf_token": csrf, "email": "Nova@Example.com", "name": "<b>Nova</b>", "password": "novasenha123",
        "role": "agent"}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Agent added." in html and "&lt;b&gt;Nova&lt;/b&gt;" in html and "<b>Nova</b>" not in html
    nova = db.session.scalar(db.select(Agent).filter_by(email="nova@example.com"))
    assert nova.role == "agent" and nova.check_password("novasenha123")
    nova_browser = app.test_client()
    assert login(nova_browser, "nova@example.com", "novasenha123").status_code == 302

    admin_client.post(f"/agent/admin/agents/{nova.id}/role", data={"csrf_token": csrf, "role": "admin"})
    db.session.refresh(nova)
    assert nova.is_admin
    assert nova_browser.get("/agent/admin/agents").status_code == 200  # at once, same session

    admin_client.post(f"/agent/admin/agents/{nova.id}/password", data={"csrf_token": csrf,
                                                                       "password": "outrasenha456"})
    db.session.refresh(nova)
    assert nova.check_password("outrasenha456") and not nova.check_password("novasenha123")
    assert nova_browser.get("/agent/").status_code == 302  # the reset ended the session
    assert login(app.test_client(), "nova@example.com", "outrasenha456").status_code == 302


def test_admin_form_errors_are_shown_and_change_nothing(admin_client):
    csrf = csrf_of(admin_client)
    for form, message in [({"email": "boss@example.com", "name": "Dup", "password": PASSWORD},
                           "An agent with this email exists."),
                          ({"email": "short@example.com", "name": "S", "password": "short"},
                           "The password needs at least 10 characters."),
                          ({"email": "not-an-email", "name": "N", "password": PASSWORD}, None)]:
        html = admin_client.post("/agent/admin/agents", data={**form, "csrf_token": csrf},
                                 follow_redirects=True).get_data(as_text=True)
        assert 'class="flash flash-error"' in html
        if message:
            assert message in html
    assert db.session.scalar(db.select(db.func.count()).select_from(Agent)) == 1


def test_an_admin_cannot_lock_themselves_out(admin_client, admin):
    csrf = csrf_of(admin_client)
    html = admin_client.get("/agent/admin/agents").get_data(as_text=True)
    assert f"/agent/admin/agents/{admin.id}/deactivate" not in html  # no button for oneself
    for path, form in [(f"/agent/admin/agents/{admin.id}/deactivate", {}),
                       (f"/agent/admin/agents/{admin.id}/role", {"role": "agent"})]:
        response = admin_client.post(path, data={**form, "csrf_token": csrf}, follow_redirects=True)
        assert "ask another admin" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.active and admin.is_admin and admin.token_version == 0
    assert admin_client.get("/agent/admin/agents").status_code == 200


def test_the_last_active_admin_stays(ctx, make_agent, admin):
    other = make_agent(email="ops@example.com", name="Ops", role="admin")
    agents.set_role(admin, other, "agent")  # fine: Bia stays admin
    # A stale actor (demoted a moment ago by someone else) cannot remove the last admin.
    with pytest.raises(agents.Conflict, match="last active admin"):
        agents.set_role(other, admin, "agent")
    with pytest.raises(agents.Conflict, match="last active admin"):
        agents.deactivate(other, admin)
    db.session.refresh(admin)
    assert admin.is_admin and admin.active


def test_two_admins_removing_each_other_at_once_leave_one(app, make_agent, admin):
    other = make_agent(email="ops@example.com", name="Ops", role="admin")
    ids = (admin.id, other.id)
    barrier = threading.Barrier(2)
    outcomes = []

    def demote(actor_id, target_id):
        with app.app_context():
            actor, target = db.session.get(Agent, actor_id), db.session.get(Agent, target_id)
            barrier.wait()
            try:
                agents.set_role(actor, target, "agent")
                outcomes.append("done")
            except Exception as exc:  # the rule (Conflict) or, on SQLite, a lock timeout
                db.session.rollback()
                outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=demote, args=ids), threading.Thread(target=demote, args=ids[::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count()).select_from(Agent).filter_by(role="admin", active=True)) == 1
    assert sorted(outcomes) == ["Conflict", "done"]


def test_agents_change_their_own_password(app, agent_client):
    other_browser = app.test_client()
    login(other_browser, agent_client.agent.email, PASSWORD)
    csrf = csrf_of(agent_client)
    wrong = agent_client.post("/agent/account/password", data={"csrf_token": csrf, "current_password": "nope",
                                                               "new_password": "brand new password"},
                              follow_redirects=True)
    assert "The current password is wrong." in wrong.get_data(as_text=True)
    response = agent_client.post("/agent/account/password", data={
        "csrf_token": csrf, "current_password": PASSWORD, "new_password": "brand new password"})
    assert response.status_code == 302
    assert agent_client.get("/agent/").status_code == 200  # this browser got a new session
    assert other_browser.get("/agent/").status_code == 302  # others ended
    assert login(app.test_client(), agent_client.agent.email, "brand new password").status_code == 302


def test_create_agent_command_takes_a_role(app, ctx):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-agent", "--email", "Cli@Example.com", "--name", "Cli Admin",
                                 "--role", "admin", "--password", "cli password 1"])
    assert result.exit_code == 0, result.output
    assert "created admin cli@example.com" in result.output
    assert db.session.scalar(db.select(Agent).filter_by(email="cli@example.com")).is_admin
    short = runner.invoke(args=["create-agent", "--email", "x@example.com", "--name", "X", "--password", "short"])
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    bad_role = runner.invoke(args=["create-agent", "--email", "y@example.com", "--name", "Y", "--role", "root",
                                   "--password", "cli password 1"])
    assert bad_role.exit_code != 0


# --- headers and escaping --------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=", re.I)


def test_every_page_has_csp_and_no_inline_script_or_style(app, admin_client, ticket):
    signed_post(app.test_client(), "/webhooks/twilio/whatsapp", inbound_params(
        '<script>alert(1)</script><img src=x onerror="alert(2)">', sid="SM" + "c" * 32,
        name='<svg onload="alert(3)">'))
    pages = {
        "login": app.test_client().get("/agent/login"),
        "list": admin_client.get("/agent/?status=all"),
        "ticket": admin_client.get(f"/agent/tickets/{ticket.id}"),
        "customer": admin_client.get(f"/agent/customers/{ticket.customer_id}"),
        "admin": admin_client.get("/agent/admin/agents"),
        "account": admin_client.get("/agent/account"),
        "simulator": app.test_client().get("/dev/simulator"),
        "mailbox": app.test_client().get("/dev/mailbox"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, name
        assert "unsafe-inline" not in csp, name
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        html = response.get_data(as_text=True)
        assert not INLINE_SCRIPT.search(html), name
        assert not INLINE_HANDLER.search(html), name
        assert not INLINE_STYLE.search(html), name
    customer_page = pages["customer"].get_data(as_text=True)
    assert "&lt;svg onload=" in customer_page and "&lt;script&gt;alert(1)&lt;/script&gt;" in customer_page
