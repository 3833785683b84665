"""The admin's view of API tokens: who holds one, since when, until when; never the token (its digest, a one-way
hash, is only the row's id in links).

knox registers its own admin listing digests; this one replaces it. Deleting a row revokes the token.
"""

from __future__ import annotations

from django.contrib import admin
from knox.models import AuthToken


class AuthTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "created", "expiry")
    list_filter = ("created", "expiry")
    search_fields = ("user__username",)
    fields = ("user", "created", "expiry")
    readonly_fields = fields
    ordering = ("-created",)

    def has_add_permission(self, request) -> bool:
        return False  # tokens are made by POST /api/token/, which shows the secret once

    def has_change_permission(self, request, obj=None) -> bool:
        return False


if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)
admin.site.register(AuthToken, AuthTokenAdmin)
