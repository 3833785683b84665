from django.urls import path

from inventory import views

app_name = "inventory"
urlpatterns = [
    path("hosts/<int:pk>/", views.host_detail, name="host_detail"),
]
