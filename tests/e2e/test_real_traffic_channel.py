"""Issue 6, channel cases, end to end through signed webhooks and the real
processes (gunicorn, worker, Rasa, action server): photos without text and
with a caption (2) fetched by the worker process and shown to an agent, and
one delivery repeated by Twilio (6) answered once."""
import re
import threading
import time
import uuid

import pytest
import requests

from bot.twilio_whatsapp import sign

from ..conftest import login_http
from .conftest import AUTH_TOKEN, Phone

pytestmark = pytest.mark.e2e

JPEG = b"\xff\xd8\xff\xe0" + b"e2e photo " * 300 + b"\xff\xd9"


def upload(system, data: bytes, content_type: str) -> tuple[str, str]:
    """The customer's phone puts a file on (the fake) Twilio."""
    response = requests.post(f"{system.base}/dev/twilio/media", files={"file": ("photo", data)},
                             data={"content_type": content_type}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["url"], content_type


def post(system, params: dict) -> int:
    url = f"{system.base}/webhooks/twilio/whatsapp"
    return requests.post(url, data=params, timeout=10,
                         headers={"X-Twilio-Signature": sign(AUTH_TOKEN, url, params)}).status_code


def test_photos_are_acknowledged_fetched_and_shown_to_the_agent(system):
    bia = Phone(system, "+5531977774444", "Bia")
    # A photo with an empty Body, then one with no Body field at all.
    bia.send("", media=[upload(system, JPEG, "image/jpeg")])
    bia.expect(r"Recebi seu arquivo")
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32, "From": f"whatsapp:{bia.number}",
              "To": "whatsapp:+14155238886", "ProfileName": "Bia", "WaId": bia.number.lstrip("+"), "NumMedia": "1"}
    params["MediaUrl0"], params["MediaContentType0"] = upload(system, JPEG + b"2", "image/jpeg")
    assert post(system, params) == 200
    bia.expect(r"Recebi seu arquivo")
    # Three photos with a caption: the caption is what goes to the assistant.
    bia.send("o pedido chegou quebrado", media=[upload(system, JPEG + bytes([n]), "image/jpeg") for n in range(3)])
    bia.send("quero falar com um atendente")
    service = {"Authorization": f"Bearer {system.env['WEBAPP_SERVICE_TOKEN']}"}
    agent = requests.Session()
    assert login_http(agent, system.base).status_code == 200
    deadline, media_ids = time.time() + 45, []
    while len(media_ids) < 5 and time.time() < deadline:
        tickets = requests.get(f"{system.base}/api/v1/tickets", params={"phone": bia.number, "active": "0"},
                               headers=service, timeout=10).json()["tickets"]
        if tickets:
            page = agent.get(f"{system.base}/agent/tickets/{tickets[0]['id']}", timeout=10).text
            media_ids = re.findall(r'src="/agent/media/(\d+)"', page)
        time.sleep(0.5)
    assert len(media_ids) == 5, f"the worker did not fetch the five photos:\n{system.log('worker')}"
    photo = agent.get(f"{system.base}/agent/media/{media_ids[0]}", timeout=10)
    assert photo.status_code == 200 and photo.content == JPEG
    anonymous = requests.get(f"{system.base}/agent/media/{media_ids[0]}", timeout=10, allow_redirects=False)
    assert anonymous.status_code in (302, 401) and JPEG not in anonymous.content


def test_a_repeated_delivery_is_answered_once(system):
    caio = Phone(system, "+5531966663333", "Caio")
    caio.say("oi", r"nome completo")
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32, "From": f"whatsapp:{caio.number}",
              "To": "whatsapp:+14155238886", "Body": "Caio Prado", "ProfileName": "Caio",
              "WaId": caio.number.lstrip("+"), "NumMedia": "0"}
    statuses = []
    first = threading.Thread(target=lambda: statuses.append(post(system, params)))
    second = threading.Timer(0.05, lambda: statuses.append(post(system, params)))
    first.start(), second.start()
    first.join(), second.join()
    caio.expect(r"qual é o seu email")
    assert post(system, params) == 200  # and once more, later
    time.sleep(3)
    bodies, _ = caio.replies()
    assert statuses == [200, 200] and bodies == []  # nothing more than the one answer
