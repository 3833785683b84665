"""Reservations keep their history when the inventory under them is removed: host and vCenter names and the
GPUs' PCI addresses are copied onto the rows (filled here for existing rows), the foreign keys are SET_NULL, and a
reason is stored when the advisor ends a hold itself."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_names(apps, schema_editor):
    Reservation = apps.get_model("placement", "Reservation")
    ReservationItem = apps.get_model("placement", "ReservationItem")
    Host = apps.get_model("inventory", "Host")
    VCenter = apps.get_model("inventory", "VCenter")
    Gpu = apps.get_model("inventory", "Gpu")
    Reservation.objects.filter(host__isnull=False).update(
        host_name=Subquery(Host.objects.filter(pk=OuterRef("host_id")).values("name")[:1])
    )
    Reservation.objects.filter(vcenter__isnull=False).update(
        vcenter_name=Subquery(VCenter.objects.filter(pk=OuterRef("vcenter_id")).values("name")[:1])
    )
    ReservationItem.objects.filter(gpu__isnull=False).update(
        pci_id=Subquery(Gpu.objects.filter(pk=OuterRef("gpu_id")).values("pci_device__pci_id")[:1])
    )
    if schema_editor.connection.vendor == "postgresql":
        # Updating a row twice in one transaction queues its deferred foreign-key checks, and PostgreSQL refuses the
        # ALTER TABLEs below while any are pending ("cannot ALTER TABLE ... because it has pending trigger
        # events"): run the checks now, then defer again as Django's constraints are declared.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0011_sync_history_indexes'),
        ('placement', '0005_reservation_vcenter'),
    ]

    operations = [
        migrations.AddField(
            model_name='reservation',
            name='close_reason',
            field=models.CharField(blank=True, help_text='Why the hold ended when the advisor ended it (its vCenter was removed)', max_length=500),
        ),
        migrations.AddField(
            model_name='reservation',
            name='host_name',
            field=models.CharField(blank=True, help_text="The host's name when reserved or removed", max_length=255),
        ),
        migrations.AddField(
            model_name='reservation',
            name='vcenter_name',
            field=models.CharField(blank=True, help_text="The vCenter's name when reserved or removed", max_length=100),
        ),
        migrations.AddField(
            model_name='reservationitem',
            name='pci_id',
            field=models.CharField(blank=True, help_text="The GPU's PCI address (kept when it is removed)", max_length=16),
        ),
        migrations.RunPython(copy_names, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='reservation',
            name='host',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='reservations', to='inventory.host'),
        ),
        migrations.AlterField(
            model_name='reservation',
            name='vcenter',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='inventory.vcenter'),
        ),
        migrations.AlterField(
            model_name='reservationitem',
            name='gpu',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='reservation_items', to='inventory.gpu'),
        ),
    ]
