"""What-if runs waiting to run under the vSphere rules: drop the alignment earlier versions stored for them.

Before, a vSphere-rules run's params held ``"alignment": "natural"`` (a rule of the article tool only); the
validation now refuses any alignment with the vSphere rules, so such a run queued before the upgrade would fail on
``alignment`` once a worker took it. Finished runs keep what they ran with.
"""

from django.db import migrations


def drop_alignment(apps, schema_editor):
    WhatIfRun = apps.get_model("placement", "WhatIfRun")
    for run in WhatIfRun.objects.filter(status__in=("queued", "running")).only("pk", "params"):
        params = run.params or {}
        if params.get("rules", "vsphere") != "article" and params.get("alignment") is not None:
            params["alignment"] = None
            WhatIfRun.objects.filter(pk=run.pk).update(params=params)


class Migration(migrations.Migration):
    dependencies = [("placement", "0007_reservation_idempotency")]

    operations = [migrations.RunPython(drop_alignment, migrations.RunPython.noop)]
