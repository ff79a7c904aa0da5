"""Text helpers for WhatsApp: splitting long messages and guessing pt/en."""
from __future__ import annotations

import re
import unicodedata

import regex

WHATSAPP_MAX_CHARS = 1600
_GRAPHEME = regex.compile(r"\X")
_LAST_SPACE = regex.compile(r"\s(?=\S*$)")


def wa_length(text: str) -> int:
    """Length as Twilio counts it: UTF-16 code units, so an emoji outside the
    Basic Multilingual Plane (😀) counts two."""
    return len(text.encode("utf-16-le")) // 2


def _fitting_prefix(text: str, limit: int) -> int:
    """Length (in characters) of the longest prefix of whole graphemes within
    ``limit`` UTF-16 units. An emoji with a skin tone, a flag or a letter with
    a combining accent is never cut in two."""
    size = end = 0
    for match in _GRAPHEME.finditer(text):
        size += wa_length(match.group())
        if size > limit:
            break
        end = match.end()
    if end == 0:  # one grapheme longer than the limit (a pathological accent pile)
        while end < len(text) and wa_length(text[:end + 1]) <= limit:
            end += 1
    return max(end, 1)


def split_message(text: str, limit: int = WHATSAPP_MAX_CHARS) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-16 units.

    Prefers paragraph breaks, then line breaks, then spaces; a single word
    longer than the limit is cut between graphemes. Parts keep their order;
    no text is lost except the whitespace at a cut.
    """
    text = text.strip()
    parts: list[str] = []
    while text and wa_length(text) > limit:
        window = text[: _fitting_prefix(text, limit)]
        if text[len(window)].isspace():  # the cut may fall on the separator just after it
            window = text[: len(window) + 1]
        cut = -1
        for sep in ("\n\n", "\n"):
            cut = window.rfind(sep)
            if cut > 0:
                break
        if cut <= 0:
            space = _LAST_SPACE.search(window)
            cut = space.start() if space else 0
        if cut <= 0:
            cut = _fitting_prefix(text, limit)
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts


def fold(text: str) -> str:
    """Lower-case and strip accents: 'Não' -> 'nao'."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_WORD = re.compile(r"[a-z']+")
# Addresses say nothing about the language ('.com' is not Portuguese 'com').
_ADDRESS = re.compile(r"\S+@\S+|https?://\S+|www\.\S+", re.I)
# Function words and support vocabulary that are frequent in one language and
# rare in the other. Accents are folded first, so 'não' and 'nao' both count.
# Words that exist in both once folded ('a', 'no', 'do', 'so' for 'só', 'to'
# for 'tô', 'status', 'com') are in neither.
_PT = set("""
oi ola bom boa dia tarde noite obrigado obrigada valeu tchau sim nao quero queria
preciso meu minha meus minhas voce voces pode poderia ajuda ajudar chamado pedido
qual quais como esta estao para pra por favor um uma uns umas que de da dos
das na nos nas em e eu ele ela isso esse essa aqui agora ainda ja mais muito
tudo nada abrir fechar falar atendente problema situacao recebi nunca entrega
cade tenho tem tambem porque entao mas ou seu sua atrasou chegou veio
""".split())
_EN = set("""
hi hello hey good morning afternoon evening thanks thank bye goodbye yes no want
would need my mine you your can could help ticket order what which how is are with
for please an the of in on and i he she it this that here now still already
more much all nothing open close talk speak agent problem received never
where have has also because but or his her
""".split())


MARGIN = 2


def guess_language(text: str) -> str | None:
    """Return 'pt', 'en' or None when the text does not say.

    Good enough to choose between the product's two languages on short chat
    messages; a tie or no signal returns None so the caller keeps the
    conversation's current language.
    """
    text = _ADDRESS.sub(" ", text)
    words = _WORD.findall(fold(text))
    pt = sum(1 for w in words if w in _PT)
    en = sum(1 for w in words if w in _EN)
    # Accented letters and 'ção'/'ões' are strong Portuguese signals.
    if re.search(r"[ãõçáéíóúâêô]", text.lower()):
        pt += 2
    # A margin of two: one stray word ("ok", a name, "hello" in a Portuguese
    # sentence) must not switch a customer's language.
    if pt >= en + MARGIN:
        return "pt"
    if en >= pt + MARGIN:
        return "en"
    return None


# A WhatsApp profile name can be anything: emoji, a shop's slogan, markup.
_NAME_MARKUP = regex.compile(r"[<>{}\[\]@/\\|=_#*~`^$%&+]|https?:|www\.", regex.I)
_NAME_DROP = regex.compile(r"[^\p{L}\p{M}\s'’.-]")
GREETING_NAME_MAX = 40


def greeting_name(profile_name: str | None) -> str | None:
    """The part of a WhatsApp profile name fit to greet someone with, or None.

    ``🌻 Dona Maria 🌻`` gives ``Dona Maria`` and ``Zé`` stays ``Zé``; markup,
    addresses, very long or letter-less names give None, so the greeting falls
    back to a neutral one. The stored profile name is never changed.
    """
    text = unicodedata.normalize("NFC", profile_name or "")
    if _NAME_MARKUP.search(text):
        return None
    name = " ".join(_NAME_DROP.sub(" ", text).split()).strip(" '’.-")
    letters = sum(ch.isalpha() for ch in name)
    if letters < 2 or len(name) > GREETING_NAME_MAX or len(name.split()) > 5:
        return None
    return name
