from django.contrib.auth.middleware import LoginRequiredMiddleware


class LoginRequiredExceptApiMiddleware(LoginRequiredMiddleware):
    """Pages redirect anonymous users to the login page; REST API views answer 401/403 through DRF instead."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(view_func, "cls", None) is not None and request.path.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
