"""DRF permissions from the roles: every signed-in user reads; writes need the role the view names."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from inventory.roles import ADMIN, PLANNER, has_role


class _RoleForWrites(BasePermission):
    role: str = ADMIN

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return True
        if has_role(request.user, self.role):
            return True
        self.message = f"this needs the {self.role} role"
        return False


class PlannerWrites(_RoleForWrites):
    """Read for everyone signed in; POST/PUT/PATCH/DELETE for planners and admins."""

    role = PLANNER


class AdminWrites(_RoleForWrites):
    """Read for everyone signed in; POST/PUT/PATCH/DELETE for admins."""

    role = ADMIN
