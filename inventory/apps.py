from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from inventory.models import VCenter
        from inventory.receivers import vcenter_deleted, vcenter_saved

        post_save.connect(vcenter_saved, sender=VCenter, dispatch_uid="inventory-vcenter-schedule")
        post_delete.connect(vcenter_deleted, sender=VCenter, dispatch_uid="inventory-vcenter-unschedule")
