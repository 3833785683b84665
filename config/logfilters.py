"""Logging filters for the LOGGING setting."""

from __future__ import annotations

import logging


class NoTraceback(logging.Filter):
    """Keeps the record's message and drops its traceback (for expected refusals such as a bad Host header)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True
