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


def may_change_owned(user, obj, owner_field: str = "created_by") -> bool:
    """Whether ``user`` may change or remove ``obj``: an admin always, anyone else only what they made.

    An object nobody made (``owner_field`` empty, e.g. made on the command line) is the admins' alone.
    """
    if has_role(user, ADMIN):
        return True
    owner_id = getattr(obj, f"{owner_field}_id", None)
    return owner_id is not None and owner_id == getattr(user, "pk", None)


class OwnerOrAdminWrites(BasePermission):
    """Object writes only by the user recorded in ``owner_field`` or an admin (reads stay open)."""

    owner_field = "created_by"
    message = "only the user who made this object or an admin can change it"

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return may_change_owned(request.user, obj, self.owner_field)


class ReservationOwnerOrAdmin(OwnerOrAdminWrites):
    message = "only the planner who made this reservation or an admin can release it"
