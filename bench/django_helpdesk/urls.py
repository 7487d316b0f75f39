"""URLs of the django-helpdesk peer: the help desk under /helpdesk/, Django's admin (its
ticket pages link to the admin's user pages)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("helpdesk/", include("helpdesk.urls", namespace="helpdesk")),
]
