import pytest

from webapp import create_app
from webapp.config import INSECURE_DEV_SECRET, check_production


def test_production_refuses_default_secrets():
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        check_production({"SECRET_KEY": INSECURE_DEV_SECRET, "JWT_SECRET_KEY": INSECURE_DEV_SECRET,
                          "TWILIO_AUTH_TOKEN": "dev-twilio-auth-token", "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
                          "DEV_TOOLS": False})


def test_production_with_real_settings_starts():
    check_production({"SECRET_KEY": "x" * 40, "JWT_SECRET_KEY": "y" * 40, "TWILIO_AUTH_TOKEN": "abc",
                      "PUBLIC_BASE_URL": "https://desk.example.com", "DEV_TOOLS": False})


def test_dev_tools_are_absent_when_disabled(database_url):
    app = create_app({"DEV_TOOLS": False, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert "dev" not in app.blueprints
    assert app.test_client().get("/dev/simulator").status_code == 404


def test_migrations_match_the_models(app, tmp_path):
    """`flask db upgrade` on an empty database builds exactly the models' schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import upgrade
    from sqlalchemy import create_engine

    from webapp.extensions import db
    from webapp.models.workspace import is_search_index_object

    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    fresh = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with fresh.app_context():
        upgrade()
    engine = create_engine(url)
    with engine.connect() as connection:
        # The search index (SQLite FTS5 tables) is built outside the models, as env.py says.
        context = MigrationContext.configure(
            connection, opts={"include_name": lambda name, *_: not is_search_index_object(name)})
        diff = compare_metadata(context, db.metadata)
    engine.dispose()
    assert diff == []


@pytest.mark.parametrize("payload", [[], ["+5511988887777", "oi"], "oi", 42, None, {"phone": "x", "body": "oi"},
                                     {"phone": "+5511988887777", "body": "   "}])
def test_the_simulator_refuses_what_is_not_a_message_with_a_400(client, ctx, payload):
    response = client.post("/dev/simulator/send", json=payload)
    assert response.status_code == 400
    assert "error" in response.get_json()
