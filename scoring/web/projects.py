"""The home page: what the service is and sign-in, or the signed-in user's projects."""

from django.shortcuts import render

from scoring.selectors.projects import projects_for_user


def home(request):
    projects = projects_for_user(user=request.user) if request.user.is_authenticated else []
    return render(request, "web/home.html", {"projects": projects})
