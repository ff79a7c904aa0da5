"""The Rasa REST client: a timeout (outcome unknown) is told apart from a
refusal (nothing happened), because only the second may be sent again."""
import json
import threading

import pytest

from bot.rasa_client import RasaClient, RasaTimeout, RasaUnavailable

from ..stub_server import JSONHandler, serve


class SlowRasa(JSONHandler):
    release = threading.Event()

    def do_POST(self):
        payload = json.loads(self.body())
        SlowRasa.release.wait(10)
        try:
            self.reply(200, [{"recipient_id": payload["sender"], "text": "tarde demais"}])
        except OSError:
            pass


def test_a_slow_turn_is_a_timeout():
    SlowRasa.release.clear()
    with serve(SlowRasa) as url:
        with pytest.raises(RasaTimeout):
            RasaClient(url, timeout=0.3).send("5511", "oi")
        SlowRasa.release.set()


def test_nobody_listening_is_unavailable_but_not_a_timeout():
    with pytest.raises(RasaUnavailable) as err:
        RasaClient("http://127.0.0.1:9", timeout=2).send("5511", "oi")
    assert not isinstance(err.value, RasaTimeout)
