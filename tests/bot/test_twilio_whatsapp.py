from urllib.parse import parse_qs

import pytest
from twilio.request_validator import RequestValidator

from bot.twilio_whatsapp import InboundMessage, SendError, TwilioSender, sign, signature_is_valid

from ..stub_server import JSONHandler, serve

URL = "https://desk.example.com/webhooks/twilio/whatsapp"


def test_signature_round_trip_with_the_real_algorithm():
    params = {"Body": "l'été & 100% 😀 ação", "From": "whatsapp:+5511988887777"}
    signature = sign("token", URL, params)
    assert signature == RequestValidator("token").compute_signature(URL, params)
    assert signature_is_valid("token", URL, params, signature)
    assert not signature_is_valid("token", URL, {**params, "Body": "l'été & 100% 😀 açãO"}, signature)
    assert not signature_is_valid("other", URL, params, signature)
    assert not signature_is_valid("token", URL, params, None)


def test_parse_inbound_with_media_and_location():
    msg = InboundMessage.from_form({
        "MessageSid": "SM1", "From": "whatsapp:+5511988887777", "To": "whatsapp:+14155238886",
        "WaId": "5511988887777", "ProfileName": "Maria", "NumMedia": "2",
        "MediaUrl0": "https://api.twilio.com/m0", "MediaContentType0": "image/jpeg",
        "MediaUrl1": "https://api.twilio.com/m1", "MediaContentType1": "audio/ogg",
        "Latitude": "-23.55", "Longitude": "-46.63", "Label": "Casa",
    })
    assert msg.body == ""
    assert [m.content_type for m in msg.media] == ["image/jpeg", "audio/ogg"]
    assert (msg.latitude, msg.longitude, msg.label) == (-23.55, -46.63, "Casa")


def test_parse_refuses_a_message_without_sid():
    with pytest.raises(ValueError):
        InboundMessage.from_form({"From": "whatsapp:+5511988887777"})


class FakeTwilio(JSONHandler):
    requests: list = []
    status = 201

    def do_POST(self):
        form = {k: v[0] for k, v in parse_qs(self.body().decode()).items()}
        FakeTwilio.requests.append((self.path, form, self.headers.get("Authorization")))
        if FakeTwilio.status == 201:
            payload = {"sid": "SM" + "f" * 32, "status": "queued", "to": form["To"], "body": form.get("Body")}
        else:
            payload = {"code": 21211, "message": "bad", "status": FakeTwilio.status}
        self.reply(FakeTwilio.status, payload)


@pytest.fixture
def fake_twilio():
    FakeTwilio.requests = []
    FakeTwilio.status = 201
    with serve(FakeTwilio) as url:
        yield url


def test_sender_builds_the_real_twilio_request(fake_twilio):
    sender = TwilioSender("AC" + "1" * 32, "secret", api_base_url=fake_twilio)
    result = sender.send(from_="whatsapp:+14155238886", to="whatsapp:+5511988887777", body="olá",
                         status_callback="https://desk.example.com/webhooks/twilio/status")
    assert result.sid.startswith("SM")
    path, form, auth = FakeTwilio.requests[0]
    assert path == f"/2010-04-01/Accounts/{'AC' + '1' * 32}/Messages.json"
    assert form == {"To": "whatsapp:+5511988887777", "From": "whatsapp:+14155238886", "Body": "olá",
                    "StatusCallback": "https://desk.example.com/webhooks/twilio/status"}
    assert auth.startswith("Basic ")


@pytest.mark.parametrize("status,transient", [(400, False), (500, True), (429, True)])
def test_sender_classifies_errors(fake_twilio, status, transient):
    FakeTwilio.status = status
    sender = TwilioSender("AC" + "1" * 32, "secret", api_base_url=fake_twilio)
    with pytest.raises(SendError) as err:
        sender.send(from_="whatsapp:+14155238886", to="whatsapp:+5511988887777", body="x")
    assert err.value.transient is transient


def test_sender_unreachable_is_transient():
    sender = TwilioSender("AC" + "1" * 32, "secret", api_base_url="http://127.0.0.1:9", timeout=2)
    with pytest.raises(SendError) as err:
        sender.send(from_="whatsapp:+14155238886", to="whatsapp:+5511988887777", body="x")
    assert err.value.transient
