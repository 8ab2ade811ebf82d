from django.conf import settings


def site(request):
    """The site's name, for the layout's title and navigation."""
    return {"SITE_NAME": settings.SITE_NAME}
