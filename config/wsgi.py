"""The WSGI entry point (``gunicorn config.wsgi``): production mode unless DJANGO_ENV says otherwise.

A server started from here refuses to run on the development secret key or with DEBUG on; the embedded demo
(``make demo``, runserver) and ``manage.py`` keep the development default.
"""

import gc
import os
import sys

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_ENV", "production")

try:
    from django.core.wsgi import get_wsgi_application

    from config.startup import check_static_manifest, warm_caches

    application = get_wsgi_application()
    check_static_manifest()
    warm_caches()
    # A worker keeps large, long-lived caches (the placement snapshot of every host) and a plan or page allocates
    # tens of thousands of small objects: at CPython's default threshold (700) the collector ran that often and
    # each full pass walked the caches, a fifth of a worker's CPU under load (bench/load_cpu.py). Start-up
    # objects (and the warmed caches) are frozen out of the collector's way, and it runs after 50,000 allocations;
    # under --preload the frozen objects also stay shared with the master instead of being copied on write.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
except ImproperlyConfigured as exc:
    # One line naming the variable (as manage.py prints it), not a traceback per worker. Exit status 4 is
    # gunicorn's "app failed to load": its master stops instead of starting new workers that fail the same way.
    print(f"configuration error: {exc}", file=sys.stderr, flush=True)
    sys.exit(4)
