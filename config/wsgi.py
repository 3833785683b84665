"""The WSGI entry point (``gunicorn config.wsgi``): production mode unless DJANGO_ENV says otherwise.

A server started from here refuses to run on the development secret key or with DEBUG on; the embedded demo
(``make demo``, runserver) and ``manage.py`` keep the development default.
"""

import os
import sys

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_ENV", "production")

try:
    from django.core.wsgi import get_wsgi_application

    from config.startup import check_static_manifest

    application = get_wsgi_application()
    check_static_manifest()
except ImproperlyConfigured as exc:
    # One line naming the variable (as manage.py prints it), not a traceback per worker. Exit status 4 is
    # gunicorn's "app failed to load": its master stops instead of starting new workers that fail the same way.
    print(f"configuration error: {exc}", file=sys.stderr, flush=True)
    sys.exit(4)
