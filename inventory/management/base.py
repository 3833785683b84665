"""The base of every inventory management command: options are only recognised spelled out in full.

argparse otherwise expands any unambiguous prefix, so ``vcenter add ... --password S3cret`` was read as
``--password-env S3cret`` and the error named the secret as a variable.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class InventoryCommand(BaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, allow_abbrev=False, **kwargs)
        _no_abbreviations(parser)
        return parser


def _no_abbreviations(parser: argparse.ArgumentParser) -> None:
    # Sub-commands get parsers of their own that do not inherit allow_abbrev; argparse reads it at parse time.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.allow_abbrev = False
                _no_abbreviations(sub)
