"""A clock the tests control, for code that paces itself with ``time.monotonic`` and
``time.sleep``: sleeping moves the clock on at once, and every pause is recorded.

Tests assert the schedule the code decided (when each step happens, how long it chose to
wait), never the wall clock: a busy machine must not fail a test, nor a quiet one pass it.
"""


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.start = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0)

    @property
    def elapsed(self) -> float:
        return self.now - self.start
