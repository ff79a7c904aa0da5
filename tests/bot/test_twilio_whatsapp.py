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


# -- issue 6: real WhatsApp traffic -------------------------------------------------

BASE = {"MessageSid": "SM1", "From": "whatsapp:+5511988887777", "To": "whatsapp:+14155238886"}


@pytest.mark.parametrize("lat,lon,expected", [
    ("-23.5505", "-46.6333", (-23.5505, -46.6333)),
    ("-23,5505", "-46,6333", (-23.5505, -46.6333)),  # a decimal comma
    ("nan", "-46.6", (None, None)),  # would be invalid JSON in the database
    ("inf", "1", (None, None)),
    ("91", "0", (None, None)),
    ("0", "181", (None, None)),
    ("", "", (None, None)),
    ("abc", "1", (None, None)),
])
def test_coordinates_are_real_numbers_or_nothing(lat, lon, expected):
    msg = InboundMessage.from_form({**BASE, "Latitude": lat, "Longitude": lon, "Label": "Casa",
                                    "Address": "Av. Paulista, 1000"})
    assert (msg.latitude, msg.longitude) == expected
    assert (msg.label is None) == (expected[0] is None)


def test_every_media_url_counts_even_when_num_media_is_missing_or_wrong():
    form = {**BASE, "MediaUrl0": "https://api.twilio.com/m0", "MediaContentType0": "image/jpeg",
            "MediaUrl1": "https://api.twilio.com/m1", "MediaContentType1": "image/png"}
    assert len(InboundMessage.from_form(form).media) == 2
    assert len(InboundMessage.from_form({**form, "NumMedia": "1"}).media) == 2
    assert len(InboundMessage.from_form({**form, "NumMedia": "x"}).media) == 2


@pytest.mark.parametrize("from_,to", [
    ("+14155238886", "(11) 98888-7777"),
    ("whatsapp:+14155238886", "5511988887777"),
    ("whatsapp:+1 415 523 8886", "whatsapp:+55 11 98888-7777"),
])
def test_outbound_always_uses_whatsapp_on_to_and_from(fake_twilio, from_, to):
    TwilioSender("AC" + "1" * 32, "secret", api_base_url=fake_twilio).send(from_=from_, to=to, body="olá")
    _, form, _ = FakeTwilio.requests[0]
    assert (form["From"], form["To"]) == ("whatsapp:+14155238886", "whatsapp:+5511988887777")


class FakeMediaApi(JSONHandler):
    """Twilio's media URL (credentials needed) redirecting to a CDN on another host."""
    seen: list = []

    def do_GET(self):
        FakeMediaApi.seen.append((self.path, self.headers.get("Authorization"), self.headers.get("Host")))
        port = self.server.server_port
        if self.path.startswith("/2010-04-01/"):
            if not (self.headers.get("Authorization") or "").startswith("Basic "):
                return self.reply(401, {"code": 20003})
            self.send_response(307)
            self.send_header("Location", f"http://localhost:{port}/cdn/abc?Signature=x")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path.startswith("/cdn/"):
            if self.headers.get("Authorization"):
                return self.reply(400, {"error": "Only one auth mechanism allowed"})
            data = b"\x89PNG fake image bytes" * 100
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.reply(404, {})


def test_media_is_fetched_with_credentials_and_the_redirect_drops_them():
    import io

    from bot.twilio_whatsapp import TwilioMediaFetcher
    FakeMediaApi.seen = []
    with serve(FakeMediaApi) as url:
        fetcher = TwilioMediaFetcher("AC" + "1" * 32, "secret", api_base_url=url)
        out = io.BytesIO()
        content_type = fetcher.fetch(f"{url}/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", out)
    assert content_type == "image/png" and out.getvalue() == b"\x89PNG fake image bytes" * 100
    (api_path, api_auth, _), (cdn_path, cdn_auth, cdn_host) = FakeMediaApi.seen
    assert api_auth.startswith("Basic ") and cdn_auth is None and cdn_host.startswith("localhost")


def test_media_elsewhere_is_refused_without_a_request_and_big_media_is_refused():
    import io

    from bot.twilio_whatsapp import MediaError, TwilioMediaFetcher
    FakeMediaApi.seen = []
    with serve(FakeMediaApi) as url:
        fetcher = TwilioMediaFetcher("AC" + "1" * 32, "secret", api_base_url="https://api.twilio.com")
        with pytest.raises(MediaError) as err:
            fetcher.fetch(f"{url}/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", io.BytesIO())
        assert not err.value.transient and FakeMediaApi.seen == []  # no credentials left the building
        small = TwilioMediaFetcher("AC" + "1" * 32, "secret", api_base_url=url, max_bytes=100)
        with pytest.raises(MediaError) as err:
            small.fetch(f"{url}/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", io.BytesIO())
        assert not err.value.transient and "larger than" in str(err.value)
