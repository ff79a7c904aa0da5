"""Rasa custom actions. Thin: read slots, call the webapp API through
``actions.api``, utter domain responses. No SQL, no import of ``webapp``."""
