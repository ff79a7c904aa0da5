import pytest

from bot.text import fold, guess_language, split_message


def test_short_text_is_one_part():
    assert split_message("olá") == ["olá"]
    assert split_message("   ") == []


def test_long_text_splits_on_words_in_order_under_the_limit():
    words = [f"palavra{i}ção😀" for i in range(300)]
    text = " ".join(words)
    parts = split_message(text)
    assert len(parts) > 1
    assert all(len(p) <= 1600 for p in parts)
    assert " ".join(parts).split() == words  # nothing lost, nothing reordered


def test_paragraph_breaks_are_preferred():
    text = ("a" * 1000) + "\n\n" + ("b" * 1000)
    assert split_message(text) == ["a" * 1000, "b" * 1000]


def test_a_word_longer_than_the_limit_is_cut():
    parts = split_message("x" * 4000)
    assert [len(p) for p in parts] == [1600, 1600, 800]


@pytest.mark.parametrize("text,lang", [
    ("oi, quero abrir um chamado", "pt"),
    ("nao recebi meu pedido", "pt"),
    ("qual o status do meu chamado?", "pt"),
    ("Hi, I want to open a ticket", "en"),
    ("what is the status of my ticket?", "en"),
    ("ok", None),
    ("👍", None),
    ("john@example.com", None),
    ("A entrega atrasou", "pt"),
    ("Assunto antigo A", None),
    ("hello", None),
    ("O pedido chegou? ok", "pt"),
    ("meu email é john@example.com", "pt"),
    ("please check this link https://shop.com.br/pedido", "en"),
])
def test_guess_language(text, lang):
    assert guess_language(text) == lang


def test_fold():
    assert fold("Não Atenção") == "nao atencao"


# -- issue 6: real WhatsApp traffic -------------------------------------------------

from bot.text import greeting_name, wa_length  # noqa: E402


def _no_blank_lines_answer() -> str:
    line = "Atenção: o pedido nº {n} saiu às 14h — já está a caminho 🚚👍🏽🇧🇷 e chega até sexta-feira."
    return "\n".join(line.format(n=n) for n in range(28))  # ~2,400 characters, single line breaks


def test_a_2400_character_answer_without_blank_lines_splits_on_lines_under_the_limit():
    text = _no_blank_lines_answer()
    assert 2300 < len(text) < 2600 and "\n\n" not in text
    parts = split_message(text)
    assert len(parts) == 2
    assert all(wa_length(p) <= 1600 for p in parts)
    assert "\n".join(parts) == text  # cut at a line break: nothing lost, nothing reordered


def test_the_limit_counts_utf16_units_as_twilio_does():
    text = "😀" * 1000  # 1,000 characters but 2,000 UTF-16 units
    parts = split_message(text)
    assert [wa_length(p) for p in parts] == [1600, 400]
    assert "".join(parts) == text


@pytest.mark.parametrize("cluster", ["👍🏽", "🇧🇷", "👩‍👩‍👧", "a\u0303"])
def test_a_cut_never_splits_an_emoji_or_an_accent(cluster):
    text = "x" * 1599 + cluster * 3  # no space: the word must be cut, right at the cluster
    parts = split_message(text)
    assert "".join(parts) == text
    assert all(wa_length(p) <= 1600 for p in parts)
    assert parts[1].startswith(cluster) and parts[0] == "x" * 1599


@pytest.mark.parametrize("profile,expected", [
    (None, None), ("", None), ("   ", None),
    ("🌻 Dona Maria 🌻", "Dona Maria"),
    ("Zé", "Zé"),
    ("<b>" + "x" * 293 + "</b>", None),
    ("<script>alert(1)</script>", None),
    ("Maria Teste", "Maria Teste"),
    ("😀😀😀", None),
    ("www.lojadamaria.com.br", None),
    ("J", None),
])
def test_greeting_name(profile, expected):
    assert greeting_name(profile) == expected
