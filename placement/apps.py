from django.apps import AppConfig


class PlacementConfig(AppConfig):
    name = "placement"
    verbose_name = "Placement"

    def ready(self) -> None:
        from inventory.signals import inventory_applied
        from placement.receivers import reconcile_after_sync

        inventory_applied.connect(reconcile_after_sync, dispatch_uid="placement-reconcile-reservations")
