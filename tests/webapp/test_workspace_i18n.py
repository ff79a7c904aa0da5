"""The agent UI's translations: complete, and the committed .mo matches the .po."""
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "webapp" / "translations"
LOCALES = ["pt_BR"]


def _catalog(locale):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=locale)


def test_every_string_of_the_agent_ui_is_translated():
    with open(TRANSLATIONS / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None}
    strings = {msg[2] if isinstance(msg[2], str) else msg[2][0]
               for msg in extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)}
    assert len(strings) > 150
    for locale in LOCALES:
        catalog = _catalog(locale)
        missing = sorted(s for s in strings if not (catalog.get(s) and catalog.get(s).string))
        assert not missing, f"untranslated in {locale} (run `make translations` and translate): {missing}"


def _key(message):
    return message.id if isinstance(message.id, str) else message.id[0]


def _text(message):
    return message.string if isinstance(message.string, str) else tuple(message.string)


def test_compiled_catalogs_match_their_sources():
    for locale in LOCALES:
        source = {_key(m): _text(m) for m in _catalog(locale) if m.id}
        with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo", "rb") as f:
            compiled = {_key(m): _text(m) for m in read_mo(f) if m.id}
        assert compiled == source, f"run `make translations` to recompile {locale}"
