"""Settings of the benchmark's server: the project's own, but for STATIC_ROOT.

collectstatic writes into the benchmark's scratch directory (BENCH_STATIC_ROOT), so that
it leaves the checkout's staticfiles/ alone.
"""

import os

from outreach.settings import *  # noqa: F403

if os.environ.get("BENCH_STATIC_ROOT"):
    STATIC_ROOT = os.environ["BENCH_STATIC_ROOT"]
