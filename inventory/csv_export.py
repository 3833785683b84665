"""CSV downloads of the inventory lists: streamed in chunks, every text cell safe to open in a spreadsheet.

Names come from vCenter, so a cell may start with ``=``, ``+``, ``-`` or ``@``: Excel, LibreOffice and Google Sheets
read such a cell as a formula (CSV injection, OWASP). Those cells get a leading apostrophe, which the spreadsheets
show as text; numbers are written as numbers. Commas, quotes and line breaks are quoted by ``csv``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 200  # lines sent together: one write per row would be 8,000 small writes for the GPU list


def csv_cell(value: object) -> object:
    """What the writer gets for ``value``: numbers as they are, yes/no for flags, text that cannot run as a
    formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return value
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Lines:
    """A file-like object whose ``write`` hands back the line (the pattern Django's docs give for streaming CSV)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """The CSV text of ``header`` and ``rows``, in chunks of ``ROWS_PER_CHUNK`` lines."""
    writer = csv.writer(_Lines())
    chunk = [writer.writerow([csv_cell(v) for v in header])]
    for row in rows:
        chunk.append(writer.writerow([csv_cell(v) for v in row]))
        if len(chunk) >= ROWS_PER_CHUNK:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> StreamingHttpResponse:
    """A streamed CSV download; ``rows`` is read as the response is sent."""
    response = StreamingHttpResponse(csv_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
