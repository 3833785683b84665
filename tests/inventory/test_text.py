from inventory.text import is_invisible, visible_text


def test_invisible_characters_are_shown_as_escapes_and_the_rest_is_kept():
    assert [is_invisible(c) for c in "a\u202e\u200b\n é"] == [False, True, True, True, False, False]
    assert visible_text("esx-nvl\u202eexe.txt\r\n日本") == "esx-nvl\\u202eexe.txt\\r\\n日本"
