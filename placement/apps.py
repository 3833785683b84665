from django.apps import AppConfig


class PlacementConfig(AppConfig):
    name = "placement"
    verbose_name = "Placement"

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        from inventory.models import Host, VCenter
        from inventory.removal import register_removal_effect
        from inventory.signals import inventory_applied, offsets_imported
        from placement.receivers import host_removed, reconcile_after_sync, reseat_after_offsets, vcenter_removed
        from placement.services import vcenter_removal_effect

        inventory_applied.connect(reconcile_after_sync, dispatch_uid="placement-reconcile-reservations")
        offsets_imported.connect(reseat_after_offsets, dispatch_uid="placement-reseat-after-offsets")
        # reservations outlive the inventory they were made on (their foreign keys are SET_NULL)
        pre_delete.connect(vcenter_removed, sender=VCenter, dispatch_uid="placement-vcenter-removed")
        pre_delete.connect(host_removed, sender=Host, dispatch_uid="placement-host-removed")
        register_removal_effect(vcenter_removal_effect)
