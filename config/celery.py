import os

from celery import Celery

from config.env import configuration_errors_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("gpu_advisor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _check_configuration(sender: Celery, **kwargs: object) -> None:
    """The worker, beat and every `celery -A config` command read Django's settings here first: a misconfigured
    variable stops them with manage.py's one line and exit status, not a traceback from inside Celery."""
    from django.conf import settings

    with configuration_errors_exit(2):
        settings.INSTALLED_APPS  # noqa: B018 - loads (and so validates) the settings
