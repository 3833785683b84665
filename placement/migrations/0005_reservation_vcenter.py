"""One active reservation per VM name and vCenter (was: per VM name across every vCenter)."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def fill_vcenter(apps, schema_editor):
    Reservation = apps.get_model("placement", "Reservation")
    Host = apps.get_model("inventory", "Host")
    Reservation.objects.update(vcenter_id=Subquery(Host.objects.filter(pk=OuterRef("host_id")).values("vcenter_id")[:1]))


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0009_vcenter_url_and_ca_file_checks"),
        ("placement", "0004_host_shape"),
    ]

    operations = [
        migrations.AddField(
            model_name="reservation",
            name="vcenter",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="inventory.vcenter"
            ),
        ),
        migrations.RunPython(fill_vcenter, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="reservation",
            name="vcenter",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="inventory.vcenter"),
        ),
        migrations.RemoveConstraint(model_name="reservation", name="one_active_reservation_per_vm"),
        migrations.AddConstraint(
            model_name="reservation",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "active")),
                fields=("vcenter", "vm_name"),
                name="one_active_reservation_per_vm_and_vcenter",
            ),
        ),
    ]
