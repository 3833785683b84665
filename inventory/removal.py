"""What else removing a vCenter affects, as the apps that hold onto its inventory say it.

``inventory`` never imports ``placement``; placement registers here (in its ``AppConfig.ready``) a callable that
answers for its reservations. The vCenter's delete page and ``manage.py vcenter remove`` show the answers.
"""

from __future__ import annotations

from collections.abc import Callable

from inventory.models import VCenter

# Each takes the vCenter about to be removed and returns a sentence in the present tense ("its 2 active
# reservations (a, b) are released ..."), or "" when removing it changes nothing of theirs.
RemovalEffect = Callable[[VCenter], str]
_EFFECTS: list[RemovalEffect] = []


def register_removal_effect(effect: RemovalEffect) -> None:
    if effect not in _EFFECTS:
        _EFFECTS.append(effect)


def vcenter_removal_effects(vcenter: VCenter) -> list[str]:
    """What removing ``vcenter`` also does, one sentence per registered app that has something to say."""
    return [text for effect in _EFFECTS if (text := effect(vcenter))]
