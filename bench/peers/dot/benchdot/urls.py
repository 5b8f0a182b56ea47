from django.http import HttpResponse
from django.urls import path
from oauth2_provider import views

urlpatterns = [
    path("health", lambda request: HttpResponse("ok")),
    path("o/token/", views.TokenView.as_view()),
    path("o/introspect/", views.IntrospectTokenView.as_view()),
]
