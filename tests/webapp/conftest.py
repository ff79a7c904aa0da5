"""Fixtures of the real-traffic tests (tests/webapp/traffic.py), for any test here."""
from .traffic import latency, media_dirs, rasa_stub, traffic_worker  # noqa: F401
