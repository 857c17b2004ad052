"""Request body parsers for the API."""

from __future__ import annotations

from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, except that a document nested deeper than Python's recursion limit
    (``[[[[…]]]]``, a few hundred kilobytes of brackets) is a malformed request, not a 500.

    DRF turns only ``ValueError`` from ``json.load`` into a ``ParseError``; the decoder raises
    ``RecursionError`` for such documents.
    """

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
