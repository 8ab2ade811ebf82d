"""Whole-page caching of public pages for visitors without a session.

A public page is the same for every anonymous visitor but for the CSRF token of the
language switcher. It is rendered once with a placeholder for the token, kept in the cache
(per path and language) for a short time, and each visitor gets it with their own token
swapped in: no query and no template rendering until it expires.
"""

import functools
import hashlib

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import cache
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.template.response import TemplateResponse
from django.utils.translation import get_language

CSRF_PLACEHOLDER = "csrf-token-placeholder-of-a-cached-page"


def cache_public_page(seconds: int):
    """Cache a view's page for visitors without a session, ``seconds`` long.

    The view must return a TemplateResponse (class-based views do): the placeholder goes
    into its context as ``csrf_token`` before it is rendered.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            # A session (a coordinator, a visitor's messages) or messages in a cookie make
            # the page someone's own: it is rendered for them and not kept.
            if (
                request.method not in ("GET", "HEAD")
                or settings.SESSION_COOKIE_NAME in request.COOKIES
                or CookieStorage.cookie_name in request.COOKIES
            ):
                return view(request, *args, **kwargs)
            path = hashlib.sha256(request.get_full_path().encode()).hexdigest()
            key = f"page:{get_language()}:{path}"
            cached = cache.get(key)
            if cached is None:
                response = view(request, *args, **kwargs)
                if response.status_code != 200 or not isinstance(response, TemplateResponse):
                    return response
                response.context_data = {
                    **(response.context_data or {}),
                    "csrf_token": CSRF_PLACEHOLDER,
                }
                response.render()
                cached = (response.content, response["Content-Type"])
                cache.set(key, cached, seconds)
            content, content_type = cached
            token = get_token(request).encode()
            return HttpResponse(
                content.replace(CSRF_PLACEHOLDER.encode(), token), content_type=content_type
            )

        return wrapped

    return decorator
