"""Registration and email codes: hashed, 5 tries, 10 minutes, one live code."""
import re
from datetime import timedelta

import pytest

from webapp.extensions import db
from webapp.models import Outbox, VerificationCode
from webapp.services import customers, outbox
from webapp.services.errors import Invalid

PHONE = "whatsapp:+5511988887777"


def sent_code(inbox) -> str:
    outbox.dispatch_due()
    return re.search(r"\b(\d{6})\b", inbox.messages()[-1].get_body(("plain",)).get_content()).group(1)


def test_register_emails_a_hashed_code_that_verifies(ctx, inbox):
    customer = customers.register(PHONE, "Maria da Silva", "Maria@Example.com")
    assert customer.email == "Maria@example.com" and not customer.verified
    code = sent_code(inbox)
    mail = inbox.messages()[-1]
    assert mail["To"].addresses[0].addr_spec == "Maria@example.com" and code in mail["Subject"]
    assert mail["To"].addresses[0].display_name == "Maria da Silva"
    stored = db.session.scalar(db.select(VerificationCode))
    assert code not in stored.code_hash and len(stored.code_hash) == 64
    assert customers.verify_code(PHONE, "000000" if code != "000000" else "111111")["result"] == "wrong"
    result = customers.verify_code(PHONE, code)
    assert result["result"] == "verified"
    assert customers.get_by_phone("11 98888-7777").verified
    # A used code is spent.
    assert customers.verify_code(PHONE, code)["result"] == "none"


def test_five_wrong_tries_kill_the_code(ctx, inbox):
    customers.register(PHONE, "Maria", "maria@example.com")
    code = sent_code(inbox)
    wrong = "999999" if code != "999999" else "888888"
    results = [customers.verify_code(PHONE, wrong) for _ in range(5)]
    assert [r["attempts_left"] for r in results] == [4, 3, 2, 1, 0]
    assert results[-1]["result"] == "dead"
    assert customers.verify_code(PHONE, code)["result"] == "dead"  # even the right one
    customers.resend_code(PHONE)
    new_code = sent_code(inbox)
    assert customers.verify_code(PHONE, new_code)["result"] == "verified"


def test_code_expires_after_ten_minutes(ctx, inbox):
    customers.register(PHONE, "Maria", "maria@example.com")
    code = sent_code(inbox)
    record = db.session.scalar(db.select(VerificationCode))
    record.expires_at = record.created_at - timedelta(seconds=1)
    db.session.commit()
    assert customers.verify_code(PHONE, code)["result"] == "dead"


def test_a_new_code_revokes_the_old_one(ctx, inbox):
    customers.register(PHONE, "Maria", "maria@example.com")
    first = sent_code(inbox)
    customers.resend_code(PHONE)
    second = sent_code(inbox)
    if first != second:
        assert customers.verify_code(PHONE, first)["result"] == "wrong"
    assert customers.verify_code(PHONE, second)["result"] == "verified"


@pytest.mark.parametrize("email", ["not-an-email", "maria@", "@example.com", "a b@example.com"])
def test_invalid_email_is_refused_when_typed(ctx, email):
    with pytest.raises(Invalid):
        customers.register(PHONE, "Maria", email)
    assert db.session.scalar(db.select(db.func.count()).select_from(Outbox)) == 0


def test_email_in_english_for_an_english_customer(ctx, inbox):
    customers.register("whatsapp:+447700900123", "John", "john@example.com", "en")
    outbox.dispatch_due()
    mail = inbox.messages()[-1]
    assert mail["Subject"].startswith("Your verification code")


def test_accented_names_are_encoded_in_headers(ctx, inbox):
    customers.register(PHONE, "João da Conceição Ñoño", "joao@example.com")
    outbox.dispatch_due()
    mail = inbox.messages()[-1]
    assert "João da Conceição Ñoño" in mail.get_body(("plain",)).get_content()


def test_codes_per_hour_are_limited(ctx, inbox):
    from webapp.services.customers import TooManyCodes
    customers.register(PHONE, "Maria", "maria@example.com")
    for _ in range(4):
        customers.resend_code(PHONE)
    with pytest.raises(TooManyCodes):
        customers.resend_code(PHONE)
    assert db.session.scalar(db.select(db.func.count()).select_from(VerificationCode)) == 5
