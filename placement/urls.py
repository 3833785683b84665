from django.urls import path

from placement import views, views_evacuation, views_whatif

app_name = "placement"
urlpatterns = [
    path("placement/", views.plan, name="plan"),
    path("placement/reserve/", views.reserve, name="reserve"),
    path("placement/sizing/", views.sizing, name="sizing"),
    path("reservations/", views.reservation_list, name="reservation_list"),
    path("reservations/<int:pk>/", views.reservation_detail, name="reservation_detail"),
    path("reservations/<int:pk>/release/", views.reservation_release, name="reservation_release"),
    path("reservations/<int:pk>/renew/", views.reservation_renew, name="reservation_renew"),
    path("inventory/hosts/<int:pk>/evacuation/", views_evacuation.host_evacuation, name="host_evacuation"),
    path("whatif/", views_whatif.whatif, name="whatif"),
    path("whatif/<int:pk>/", views_whatif.whatif_run, name="whatif_run"),
]
