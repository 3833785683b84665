from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """``?limit=&offset=`` over an ordered queryset; 50 by default, at most 500 a page."""

    default_limit = 50
    max_limit = 500
