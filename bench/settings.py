"""Settings of the benchmark's server: the project's own, with two differences.

- ROOT_URLCONF adds /healthz (outreach.health), the yardstick the pages are measured
  against, in case outreach.urls does not route it yet;
- STATIC_ROOT is the benchmark's scratch directory (BENCH_STATIC_ROOT), so that its
  collectstatic leaves the checkout's staticfiles/ alone.
"""

import os

from outreach.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
if os.environ.get("BENCH_STATIC_ROOT"):
    STATIC_ROOT = os.environ["BENCH_STATIC_ROOT"]
