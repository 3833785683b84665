"""The WSGI entry point (``gunicorn config.wsgi``): production mode unless DJANGO_ENV says otherwise.

A server started from here refuses to run on the development secret key or with DEBUG on; the embedded demo
(``make demo``, runserver) and ``manage.py`` keep the development default.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

from config.env import configuration_errors_exit
from config.startup import check_static_manifest, warm_caches

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_ENV", "production")

# One line naming the variable (as manage.py prints it), not a traceback per worker. Exit status 4 is gunicorn's
# "app failed to load": its master stops instead of starting new workers that fail the same way.
with configuration_errors_exit(4):
    # Before the middleware loads: whitenoise would warn about the missing STATIC_ROOT first, in two more lines.
    check_static_manifest()
    application = get_wsgi_application()
    warm_caches()
    # A worker keeps large, long-lived caches (the placement snapshot of every host) and a plan or page allocates
    # tens of thousands of small objects: at CPython's default threshold (700) the collector ran that often and
    # each full pass walked the caches, a fifth of a worker's CPU under load (bench/load_cpu.py). Start-up
    # objects (and the warmed caches) are frozen out of the collector's way, and it runs after 50,000 allocations;
    # under --preload the frozen objects also stay shared with the master instead of being copied on write.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
