"""Text helpers for WhatsApp: splitting long messages and guessing pt/en."""
from __future__ import annotations

import re
import unicodedata

WHATSAPP_MAX_CHARS = 1600


def split_message(text: str, limit: int = WHATSAPP_MAX_CHARS) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` characters.

    Prefers paragraph breaks, then line breaks, then spaces; a single word
    longer than the limit is cut. Parts keep their order; no text is lost
    except the whitespace at a cut.
    """
    text = text.strip()
    if not text:
        return []
    parts: list[str] = []
    while len(text) > limit:
        window = text[: limit + 1]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            cut = window.rfind(sep)
            if cut > 0:
                break
        if cut <= 0:
            cut = limit
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
