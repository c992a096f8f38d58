"""Clock port: the engine reads time only through a Clock, so tests can pass a FakeClock."""

from __future__ import annotations

import abc
import datetime
import time


class Clock(abc.ABC):
    """A source of monotonic durations and of wall-clock timestamps."""

    @abc.abstractmethod
    def monotonic_ns(self) -> int:
        """Return a monotonic reading in nanoseconds, for measuring durations."""

    @abc.abstractmethod
    def now(self) -> datetime.datetime:
        """Return the current UTC time, for timestamps in baselines and reports."""


class SystemClock(Clock):
    """The real clock: `time.perf_counter_ns` for durations and the system UTC time."""

    def monotonic_ns(self) -> int:
        return time.perf_counter_ns()

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.timezone.utc)


class FakeClock(Clock):
    """A clock for tests that moves only through `advance`, or by `step_ns` on every reading."""

    def __init__(
        self,
        start_ns: int = 0,
        step_ns: int = 0,
        wall: datetime.datetime = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    ) -> None:
        self._ns = start_ns
        self._step_ns = step_ns
        self._wall = wall

    def monotonic_ns(self) -> int:
        reading = self._ns
        self._ns += self._step_ns
        return reading

    def now(self) -> datetime.datetime:
        return self._wall + datetime.timedelta(microseconds=self._ns / 1000)

    def advance(self, ns: int) -> None:
        self._ns += ns


def format_duration_ms(ns: float) -> str:
    """Format nanoseconds as whole milliseconds, or with one decimal below 10 ms."""
    ms = ns / 1e6
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"
