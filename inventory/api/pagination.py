import re

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

_DIGITS = re.compile(r"[0-9]+", re.ASCII)


class Pagination(LimitOffsetPagination):
    """``?limit=&offset=`` over an ordered queryset; 50 by default, at most 500 a page (a larger limit is read as
    500). A limit or offset that is not a whole number in range is a 400 naming it, not the default page."""

    default_limit = 50
    max_limit = 500

    def get_limit(self, request) -> int:
        value = self._whole(request, self.limit_query_param)
        if value is None:
            return self.default_limit
        if value < 1:
            raise ValidationError({self.limit_query_param: [self._limit_range()]})
        return min(value, self.max_limit)

    def get_offset(self, request) -> int:
        value = self._whole(request, self.offset_query_param)
        return 0 if value is None else value

    def _whole(self, request, name: str) -> int | None:
        raw = request.query_params.get(name, "").strip()
        if not raw:
            return None
        if not _DIGITS.fullmatch(raw):
            problem = self._limit_range() if name == self.limit_query_param else "Enter a whole number, 0 or more."
            raise ValidationError({name: [problem]})
        digits = raw.lstrip("0") or "0"
        return int(digits) if len(digits) < 19 else 10**18  # past any count: an empty page, not an overflow

    def _limit_range(self) -> str:
        return f"Enter a whole number from 1 to {self.max_limit} (a larger one is read as {self.max_limit})."

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        minimum = {self.limit_query_param: 1, self.offset_query_param: 0}
        for parameter in parameters:
            if parameter["name"] in minimum:
                parameter["schema"] = {**parameter["schema"], "minimum": minimum[parameter["name"]]}
        return parameters
