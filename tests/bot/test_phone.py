import pytest

from bot.phone import InvalidPhone, phone_key, to_e164, whatsapp_address

SPELLINGS = ["(11) 98888-7777", "11988887777", "+55 11 98888-7777", "5511988887777",
             "whatsapp:+5511988887777", "+55 11 8888-7777"]


@pytest.mark.parametrize("raw", SPELLINGS)
def test_every_spelling_of_a_brazilian_mobile_gives_one_key(raw):
    assert phone_key(raw) == "551188887777"


def test_e164_keeps_the_ninth_digit():
    assert to_e164("(11) 98888-7777") == "+5511988887777"
    assert whatsapp_address("11 98888-7777") == "whatsapp:+5511988887777"


def test_other_countries_are_untouched():
    assert to_e164("whatsapp:+14155238886") == "+14155238886"
    assert phone_key("+1 415 523 8886") == "14155238886"


@pytest.mark.parametrize("raw", ["", "abc", "whatsapp:", "12"])
def test_garbage_is_refused(raw):
    with pytest.raises(InvalidPhone):
        to_e164(raw)
