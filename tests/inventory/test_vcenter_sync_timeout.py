"""``vcenter sync NAME --timeout`` takes only a positive number of seconds (trial-churn L7)."""

import pytest
from django.core.management import CommandError, call_command

from inventory.models import SyncRun
from tests.factories import VCenterFactory


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf"])
@pytest.mark.parametrize("queue", [False, True])
def test_a_timeout_that_is_not_a_positive_number_of_seconds_is_refused_naming_the_option(db, value, queue):
    VCenterFactory(name="lab")
    with pytest.raises(CommandError, match=r"^--timeout: must be a number of seconds above 0"):
        call_command("vcenter", "sync", "lab", *(["--queue"] if queue else []), f"--timeout={value}")
    assert not SyncRun.objects.exists()  # refused before anything was started
