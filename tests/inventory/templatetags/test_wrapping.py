"""``inventory.templatetags.wrapping``: hyphenated words stay whole, everything is escaped."""

from inventory.templatetags.wrapping import keep_hyphenated


def test_only_hyphenated_words_are_kept_whole_and_text_is_escaped():
    assert keep_hyphenated("vGPU same-size") == 'vGPU <span class="nowrap">same-size</span>'
    assert keep_hyphenated("Shared (vSGA), not for compute") == "Shared (vSGA), not for compute"
    assert keep_hyphenated("<b>x-y</b> &") == '<span class="nowrap">&lt;b&gt;x-y&lt;/b&gt;</span> &amp;'
