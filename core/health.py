"""A liveness probe for load balancers and container health checks.

It answers from the process alone, without the database or a template, so that it tells
"the application server is up" and costs as little as a Django view can: the benchmarks in
bench/ compare the public pages against it.
"""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse


@login_not_required
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
