from rest_framework.routers import DefaultRouter

from inventory.api import views

router = DefaultRouter()
router.register("vcenters", views.VCenterViewSet)
router.register("hosts", views.HostViewSet)
router.register("gpus", views.GpuViewSet)

urlpatterns = router.urls
