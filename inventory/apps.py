from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from inventory.models import VCenter
        from inventory.receivers import user_saved, vcenter_deleted, vcenter_saved

        post_save.connect(vcenter_saved, sender=VCenter, dispatch_uid="inventory-vcenter-schedule")
        post_delete.connect(vcenter_deleted, sender=VCenter, dispatch_uid="inventory-vcenter-unschedule")
        post_save.connect(user_saved, sender=get_user_model(), dispatch_uid="inventory-user-password-tokens")
