"""Export real conversations as Rasa training data, with personal data replaced.

Two formats, both Rasa 3.1 YAML built with PyYAML (never hand-formatted, so any
customer text -- quotes, colons, emoji, newlines -- stays valid YAML):

- ``nlu``: the customers' texts as NLU examples. We do not store Rasa's
  predicted intent, so every example goes under ``to_label_<lang>``; a trainer
  moves each one to the right intent in ``data/nlu/<lang>.yml``. Empty texts,
  ``/intent`` commands, noise (fewer than two letters once personal data is
  replaced) and duplicates (compared case-, accent- and spacing-insensitively)
  are dropped.
- ``stories``: test stories (``user:``/``bot:`` steps), one per conversation
  segment. A segment ends after a silence longer than Rasa's session expiry
  (2 hours). Messages by a person (author ``agent``) are not the assistant's
  words: a story stops at the customer's last message the assistant answered
  before an agent wrote, and what the customer said to the agent is skipped.

Personal data in every exported text is replaced by a placeholder: emails
``[email]``, phone numbers ``[phone]``, CPF/CNPJ ``[document]``, the customer's
name and WhatsApp profile name (each part of three or more letters, accents
and case ignored) ``[name]``, digit runs of six or more ``[number]``. Short
numbers (a ticket "#12", "2 items") stay.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import phonenumbers
import yaml

from ..extensions import db
from ..models import Conversation, Customer, Message
from .errors import Invalid

FORMATS = ("nlu", "stories")
LANGUAGES = ("pt", "en")
SESSION_GAP = timedelta(hours=2)  # Rasa's session_expiration_time (domain.yml: 120 minutes)
RASA_VERSION = "3.1"

# -- personal data ---------------------------------------------------------------------

EMAIL_RE = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# CPF 000.000.000-00 and CNPJ 00.000.000/0000-00 (dots, slash and dash optional),
# and the bare 11/14 digits.
DOCUMENT_RE = re.compile(r"(?<!\d)(?:\d{3}\.?\d{3}\.?\d{3}-?\d{2}|\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2})(?!\d)")
# Fallback for what the phonenumbers matcher does not take as a valid number:
# at least 8 digits with phone punctuation between them, optionally after "+".
PHONE_FALLBACK_RE = re.compile(r"(?<![\w+])\+?\(?\d(?:[\s().-]{0,2}\d){7,14}(?!\d)")
LONG_DIGITS_RE = re.compile(r"\d{6,}")
PLACEHOLDER_RE = re.compile(r"\[(?:email|phone|document|name|number)\]")
NAME_PART_MIN = 3

# Accented letters a name part may be written with (or without).
_ACCENTED = "áàâãäåéèêëíìîïóòôõöúùûüçñýÿ"
_VARIANTS: dict[str, set[str]] = {}
for _ch in _ACCENTED:
    _VARIANTS.setdefault(unicodedata.normalize("NFD", _ch)[0], set()).add(_ch)


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _name_pattern(part: str) -> str:
    """A regex for one name part that matches it with or without accents."""
    out = []
    for ch in part.lower():
        base = strip_accents(ch)
        if base.isalpha():
            out.append("[" + re.escape(base) + "".join(sorted(_VARIANTS.get(base, ()))) + "]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def name_parts(*names: str | None) -> list[str]:
    """The parts (>= 3 letters) of the customer's names, longest first."""
    parts = set()
    for name in names:
        for part in re.findall(r"[^\W\d_]+", name or ""):
            if len(part) >= NAME_PART_MIN:
                parts.add(part)
    return sorted(parts, key=lambda p: (-len(p), p))


@dataclass
class Redactor:
    """Replaces personal data in texts about one customer."""

    names: list[str] = field(default_factory=list)
    region: str = "BR"

    def __post_init__(self):
        parts = name_parts(*self.names)
        self._name_re = (re.compile(r"(?<!\w)(?:" + "|".join(_name_pattern(p) for p in parts) + r")(?!\w)",
                                    re.IGNORECASE) if parts else None)

    def __call__(self, text: str) -> str:
        if not text:
            return ""
        text = EMAIL_RE.sub("[email]", text)
        text = DOCUMENT_RE.sub(self._document, text)
        text = self._phones(text)
        text = PHONE_FALLBACK_RE.sub(self._fallback_phone, text)
        text = LONG_DIGITS_RE.sub("[number]", text)
        if self._name_re is not None:
            text = self._name_re.sub("[name]", text)
        return text

    def _phones(self, text: str) -> str:
        pieces, last = [], 0
        for match in phonenumbers.PhoneNumberMatcher(text, self.region, leniency=phonenumbers.Leniency.VALID):
            pieces.append(text[last:match.start])
            pieces.append("[phone]")
            last = match.end
        pieces.append(text[last:])
        return "".join(pieces)

    @staticmethod
    def _fallback_phone(match: re.Match) -> str:
        found = match.group(0)
        digits = sum(c.isdigit() for c in found)
        # A bare digit run is an order number or a code ([number] below), not a phone.
        return "[phone]" if digits >= 8 and not found.isdigit() else found

    @staticmethod
    def _document(match: re.Match) -> str:
        found = match.group(0)
        if not found.isdigit() or valid_cpf(found) or valid_cnpj(found):
            return "[document]"
        return found  # bare digits without a valid check digit: a phone or a number


def _check_digit(digits: list[int], weights: list[int]) -> int:
    rest = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
    return 0 if rest < 2 else 11 - rest


def valid_cpf(text: str) -> bool:
    d = [int(c) for c in text if c.isdigit()]
    if len(d) != 11 or len(set(d)) == 1:
        return False
    return (_check_digit(d[:9], list(range(10, 1, -1))) == d[9]
            and _check_digit(d[:10], list(range(11, 1, -1))) == d[10])


def valid_cnpj(text: str) -> bool:
    d = [int(c) for c in text if c.isdigit()]
    if len(d) != 14 or len(set(d)) == 1:
        return False
    first = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    return _check_digit(d[:12], first) == d[12] and _check_digit(d[:13], [6] + first) == d[13]


def redactor_for(customer: Customer | None) -> Redactor:
    if customer is None:
        return Redactor()
    return Redactor(names=[customer.name, customer.profile_name])


# -- reading the messages --------------------------------------------------------------

@dataclass
class Filters:
    start: date | None = None
    end: date | None = None  # inclusive
    language: str = "all"  # pt | en | all
    customer_id: int | None = None
    ticket_id: int | None = None

    def validate(self) -> Filters:
        if self.language not in (*LANGUAGES, "all"):
            raise Invalid("language must be pt, en or all")
        if self.start and self.end and self.start > self.end:
            raise Invalid("the start date is after the end date")
        return self


def _since(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def _messages(filters: Filters) -> Iterator[Message]:
    query = (db.select(Message).join(Conversation, Message.conversation_id == Conversation.id)
             .order_by(Message.conversation_id, Message.created_at, Message.id))
    if filters.start:
        query = query.where(Message.created_at >= _since(filters.start))
    if filters.end:
        query = query.where(Message.created_at < _since(filters.end + timedelta(days=1)))
    if filters.customer_id:
        query = query.where(Conversation.customer_id == filters.customer_id)
    if filters.ticket_id:
        query = query.where(Message.ticket_id == filters.ticket_id)
    return iter(db.session.scalars(query.execution_options(yield_per=500)))


def _by_conversation(messages: Iterable[Message]) -> Iterator[tuple[Conversation, list[Message]]]:
    current, batch = None, []
    for message in messages:
        if current is not None and message.conversation_id != current.id:
            yield current, batch
            batch = []
        current = message.conversation
        batch.append(message)
    if current is not None:
        yield current, batch


def _language(message: Message, customer: Customer | None) -> str:
    lang = (message.language or (customer.language if customer else "") or "pt")[:2].lower()
    return lang if lang in LANGUAGES else "pt"


def one_line(text: str) -> str:
    return " ".join(text.split())


def _neutralise_annotations(text: str) -> str:
    """Rasa reads ``[text](entity)`` / ``[text]{...}`` in examples as entity
    annotations; customer text must not be able to annotate."""
    return re.sub(r"\]\s*(?=[(\[{])", "] ", text)


def _is_command(text: str) -> bool:
    return text.lstrip().startswith("/")


def _letters(text: str) -> int:
    return sum(c.isalpha() for c in PLACEHOLDER_RE.sub("", text))


def dedupe_key(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", strip_accents(text).casefold()).split())


# -- NLU -------------------------------------------------------------------------------

def nlu_examples(filters: Filters) -> dict[str, list[str]]:
    """Customer texts per language, redacted, cleaned and deduplicated."""
    filters.validate()
    examples: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
    seen: dict[str, set[str]] = {lang: set() for lang in LANGUAGES}
    for conversation, messages in _by_conversation(_messages(filters)):
        redact = redactor_for(conversation.customer)
        for message in messages:
            if message.author != "customer" or message.direction != "in":
                continue
            lang = _language(message, conversation.customer)
            if filters.language != "all" and lang != filters.language:
                continue
            body = (message.body or "").strip()
            if not body or _is_command(body):
                continue
            text = _neutralise_annotations(one_line(redact(body)))
            if _letters(text) < 2:
                continue
            key = dedupe_key(text)
            if key in seen[lang]:
                continue
            seen[lang].add(key)
            examples[lang].append(text)
    return examples


def nlu_yaml(filters: Filters) -> str:
    examples = nlu_examples(filters)
    nlu = [{"intent": f"to_label_{lang}", "examples": LiteralText("".join(f"- {t}\n" for t in texts))}
           for lang, texts in examples.items() if texts]
    return dump({"version": RASA_VERSION, "nlu": nlu})


# -- stories ---------------------------------------------------------------------------

def _segments(messages: list[Message]) -> Iterator[list[Message]]:
    segment: list[Message] = []
    for message in messages:
        if segment and message.created_at - segment[-1].created_at > SESSION_GAP:
            yield segment
            segment = []
        segment.append(message)
    if segment:
        yield segment


def _pieces(segment: list[Message]) -> Iterator[list[Message]]:
    """The segment cut at the messages a person (agent) wrote; in each later
    piece what the customer said before the assistant spoke again was said
    to the agent and is dropped."""
    piece: list[Message] = []
    for message in segment:
        if message.author == "agent":
            yield piece
            piece = []
            continue
        piece.append(message)
    yield piece


def _steps(piece: list[Message], redact: Redactor, ends_at_agent: bool) -> list[dict]:
    steps: list[dict] = []
    for message in piece:
        body = (message.body or "").strip()
        if message.author == "customer":
            if not body or _is_command(body):
                continue
            text = _neutralise_annotations(redact(body))
            if steps and "user" in steps[-1]:  # several WhatsApp messages in a row: one turn
                steps[-1]["user"] = LiteralText(steps[-1]["user"] + "\n" + text)
            else:
                steps.append({"user": LiteralText(text)})
        elif message.author in ("bot", "system") and body:
            if steps:  # a story starts with the customer; a proactive notice before it is skipped
                steps.append({"bot": LiteralText(redact(body))})
    if ends_at_agent:  # the customer's last words went to the person
        while steps and "user" in steps[-1]:
            steps.pop()
    return steps


def _piece_language(piece: list[Message], customer: Customer | None) -> str:
    langs = [_language(m, customer) for m in piece if m.author == "customer"]
    if not langs:
        return _language(piece[0], customer) if piece else "pt"
    return max(LANGUAGES, key=langs.count)


def stories(filters: Filters) -> list[dict]:
    filters.validate()
    result: list[dict] = []
    for conversation, messages in _by_conversation(_messages(filters)):
        redact = redactor_for(conversation.customer)
        for segment in _segments(messages):
            pieces = list(_pieces(segment))
            for index, piece in enumerate(pieces):
                if index > 0:  # after an agent's message: skip what was said to the person
                    while piece and piece[0].author == "customer":
                        piece = piece[1:]
                if not piece:
                    continue
                lang = _piece_language(piece, conversation.customer)
                if filters.language != "all" and lang != filters.language:
                    continue
                steps = _steps(piece, redact, ends_at_agent=index < len(pieces) - 1)
                if not any("bot" in step for step in steps):
                    continue
                started = piece[0].created_at
                name = (f"conversation {conversation.id} {started:%Y-%m-%d %H:%M} UTC"
                        f"{' part ' + str(index + 1) if len(pieces) > 1 else ''} ({lang})")
                result.append({"story": name, "steps": steps})
    return result


def stories_yaml(filters: Filters) -> str:
    return dump({"version": RASA_VERSION, "stories": stories(filters)})


def export(fmt: str, filters: Filters) -> str:
    if fmt == "nlu":
        return nlu_yaml(filters)
    if fmt == "stories":
        return stories_yaml(filters)
    raise Invalid("format must be nlu or stories")


# -- YAML ------------------------------------------------------------------------------

class LiteralText(str):
    """A string written as a ``|`` block (PyYAML falls back to a quoted
    scalar by itself when a literal block cannot hold the text)."""


class _Dumper(yaml.SafeDumper):
    pass


def _literal(dumper: yaml.SafeDumper, value: LiteralText):
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


_Dumper.add_representer(LiteralText, _literal)


def dump(data: dict) -> str:
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=10_000,
                     default_flow_style=False)
