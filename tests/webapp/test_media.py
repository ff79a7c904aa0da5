"""Issue 6, case 2: photos with an empty Body, with no Body field, three photos
with a caption. Never a 500; every media URL and content type is kept on the
conversation and the ticket; the worker fetches each file with the account's
credentials (through Twilio's redirect) and agents, only agents, can see it."""
import hashlib
import io
from datetime import timedelta

import pytest

from webapp.extensions import db
from webapp.models import MediaFile, Message, Ticket, TicketEvent, utcnow
from webapp.services import inbound, media, tickets
from webapp.services import outbox as outbox_service

from ..conftest import ACCOUNT_SID
from .traffic import ScriptedRasa, count, deliver

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"png-bytes" * 500
PDF = b"%PDF-1.4\n" + b"%%EOF\n" * 50


def upload(client, data: bytes, content_type: str) -> str:
    """What the customer's phone does: put a file on (the fake) Twilio."""
    response = client.post("/dev/twilio/media", data={"file": (io.BytesIO(data), "x"),
                                                        "content_type": content_type},
                           content_type="multipart/form-data")
    assert response.status_code == 201
    return response.json["url"]


def media_params(*items: tuple[str, str]) -> dict:
    params = {"NumMedia": str(len(items))}
    for i, (url, content_type) in enumerate(items):
        params[f"MediaUrl{i}"], params[f"MediaContentType{i}"] = url, content_type
    return params


@pytest.fixture
def fake_api(live_server, media_dirs):
    return live_server


@pytest.mark.parametrize("body", ["", None], ids=["empty Body", "no Body field"])
def test_a_photo_without_text_is_stored_fetched_and_shown_to_agents(client, ctx, fake_api, body, agent_client):
    url = upload(client, JPEG, "image/jpeg")
    response = deliver(client, body, sid="SM" + "1" * 32, **media_params((url, "image/jpeg")))
    assert response.status_code == 200
    message = db.session.scalar(db.select(Message))
    assert message.body == "" and message.media == [{"url": url, "content_type": "image/jpeg"}]
    [item] = message.attachments
    assert (item.status, item.url, item.content_type) == ("pending", url, "image/jpeg")

    assert media.fetch_due() == 1
    db.session.refresh(item)
    assert item.status == "stored" and item.size == len(JPEG)
    assert item.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert media.file_of(item).read_bytes() == JPEG

    shown = agent_client.get(f"/agent/media/{item.id}")
    assert shown.status_code == 200 and shown.data == JPEG
    assert shown.mimetype == "image/jpeg" and "sandbox" in shown.headers["Content-Security-Policy"]
    # On the ticket the customer then opens, the agent sees the photo.
    ticket, _ = tickets.create(message.conversation.customer, "Tela quebrada", "Veja a foto")
    page = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    assert f'src="/agent/media/{item.id}"' in page


def test_three_photos_with_a_caption_keep_every_url_and_type_in_order(client, ctx, fake_api, rasa_stub):
    items = [(upload(client, JPEG, "image/jpeg"), "image/jpeg"), (upload(client, PNG, "image/png"), "image/png"),
             (upload(client, PDF, "application/pdf"), "application/pdf")]
    response = deliver(client, "fotos do defeito", sid="SM" + "2" * 32, **media_params(*items))
    assert response.status_code == 200
    message = db.session.scalar(db.select(Message))
    assert [(m["url"], m["content_type"]) for m in message.media] == items
    assert [(a.position, a.url, a.content_type) for a in message.attachments] == \
        [(i, url, ct) for i, (url, ct) in enumerate(items)]
    # The caption is what the customer said; the media travel as metadata.
    from bot.rasa_client import RasaClient
    inbound.process_due(RasaClient(rasa_stub, timeout=5))
    assert ScriptedRasa.texts() == ["fotos do defeito"]
    assert [m["content_type"] for m in ScriptedRasa.received[0]["metadata"]["media"]] == \
        ["image/jpeg", "image/png", "application/pdf"]
    assert media.fetch_due() == 3
    stored = [media.file_of(a).read_bytes() for a in db.session.scalars(db.select(MediaFile).order_by(MediaFile.id))]
    assert stored == [JPEG, PNG, PDF]


def test_media_is_for_agents_only_and_active_content_is_a_download(app, client, ctx, fake_api, agent_client):
    url = upload(client, b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
                 "image/svg+xml")
    deliver(client, "", sid="SM" + "3" * 32, **media_params((url, "image/svg+xml")))
    media.fetch_due()
    item = db.session.scalar(db.select(MediaFile))
    shown = agent_client.get(f"/agent/media/{item.id}")
    assert shown.status_code == 200
    assert shown.mimetype == "application/octet-stream"
    assert shown.headers["Content-Disposition"].startswith("attachment")
    anonymous = app.test_client().get(f"/agent/media/{item.id}")
    assert anonymous.status_code in (302, 401) and b"<svg" not in anonymous.data
    assert agent_client.get(f"/agent/media/{item.id + 100}").status_code == 404


def test_a_failed_download_is_retried_later_and_the_conversation_goes_on(app, client, ctx, fake_api, rasa_stub):
    from bot.rasa_client import RasaClient
    url = upload(client, JPEG, "image/jpeg")
    deliver(client, "", sid="SM" + "4" * 32, **media_params((url, "image/jpeg")))
    deliver(client, "essa é a foto", sid="SM" + "5" * 32)
    app.config["FAKE_TWILIO_MEDIA_STATUS"] = 503
    try:
        assert media.fetch_due() == 0
    finally:
        app.config["FAKE_TWILIO_MEDIA_STATUS"] = None
    item = db.session.scalar(db.select(MediaFile))
    assert item.status == "failed" and item.attempts == 1 and "503" in item.last_error
    assert item.next_attempt_at > utcnow() and media.waiting() == []
    # The conversation does not wait for the download.
    assert inbound.process_due(RasaClient(rasa_stub, timeout=5)) == 2
    assert ScriptedRasa.texts() == ["/share_media", "essa é a foto"]
    item.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert media.fetch_due() == 1
    db.session.refresh(item)
    assert item.status == "stored" and item.attempts == 2 and item.last_error is None


def test_media_not_from_the_twilio_api_is_never_fetched(client, ctx, fake_api):
    deliver(client, "", sid="SM" + "6" * 32, **media_params(("https://attacker.example/x.jpg", "image/jpeg")))
    assert media.fetch_due() == 0
    item = db.session.scalar(db.select(MediaFile))
    assert item.status == "dead" and "not a media URL" in item.last_error
    assert db.session.scalar(db.select(Message)).media[0]["url"] == "https://attacker.example/x.jpg"


def test_media_sent_while_a_person_owns_the_conversation_is_on_the_ticket(client, ctx, fake_api, agent_client,
                                                                           rasa_stub):
    from bot.rasa_client import RasaClient
    deliver(client, "oi", sid="SM" + "7" * 32)
    conversation = db.session.scalar(db.select(Message)).conversation
    ticket = inbound.handoff(conversation, reason="customer_request")
    url = upload(client, PNG, "image/png")
    deliver(client, "", sid="SM" + "8" * 32, **media_params((url, "image/png")))
    inbound.process_due(RasaClient(rasa_stub, timeout=5))
    media.fetch_due()
    photo = db.session.scalar(db.select(Message).where(Message.provider_sid == "SM" + "8" * 32))
    assert photo.ticket_id == ticket.id
    event = db.session.scalar(db.select(TicketEvent).filter_by(ticket_id=ticket.id, kind="customer_message")
                              .order_by(TicketEvent.id.desc()).limit(1))
    assert event.data["message_id"] == photo.id and event.data["media"] == [{"url": url, "content_type": "image/png"}]
    page = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    assert f'src="/agent/media/{photo.attachments[0].id}"' in page
    assert count(Ticket) == 1


def test_twilio_media_urls_need_the_account_credentials(client, ctx, fake_api):
    import requests
    url = upload(client, JPEG, "image/jpeg")
    assert url.startswith(f"{fake_api}/dev/twilio/2010-04-01/Accounts/{ACCOUNT_SID}/")
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, auth=(ACCOUNT_SID, "wrong"), timeout=5).status_code == 401
    assert outbox_service  # the outbox is untouched by media
