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
