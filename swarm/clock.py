"""Time for the scheduler, injectable: the event loop's clock in production, a virtual one in tests.

`VirtualClock` jumps straight to the next timer whenever the loop has nothing else to do, so a test
of a 30 s timeout or of five retries with backoff runs in milliseconds (trio's MockClock, autojump).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

__all__ = ["Clock", "SystemClock", "Timer", "VirtualClock"]


class Timer(Protocol):
    """A callback scheduled on a clock; `asyncio.TimerHandle` is one."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    def time(self) -> float:
        """Seconds on this clock (monotonic; its zero means nothing)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Call `callback()` on the event loop once the clock reaches `when`."""
        ...

    def timeout_at(self, when: float | None) -> AbstractAsyncContextManager[None]:
        """An async context manager that raises TimeoutError if its body runs past `when`."""
        ...


class SystemClock:
    """The running loop's monotonic clock."""

    def time(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_at(self, when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_at(when, callback)

    def timeout_at(self, when: float | None) -> _Deadline:
        return _Deadline(when)


class _Deadline:
    """`asyncio.timeout_at` cut down to what the scheduler needs: one timer, no rescheduling.

    The scheduler enters one per attempt; this costs about a third of `asyncio.timeout`.
    """

    __slots__ = ("_fired", "_handle", "_task", "_when")

    def __init__(self, when: float | None) -> None:
        self._when = when
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._fired = False

    async def __aenter__(self) -> None:
        if self._when is not None:
            self._task = asyncio.current_task()
            self._handle = asyncio.get_running_loop().call_at(self._when, self._fire)

    def _fire(self) -> None:
        self._fired = True
        assert self._task is not None
        self._task.cancel()

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self._handle is None:
            return
        self._handle.cancel()
        if self._fired and exc_type is asyncio.CancelledError:
            assert self._task is not None
            if self._task.uncancel() == 0:
                raise TimeoutError


class VirtualClock:
    """Time that passes only when every task is waiting: then it jumps to the next timer.

    A jump waits `idle_real_s` of real time with nothing runnable first, so work that a thread is
    doing (and that will wake the loop) is not overtaken by virtual time.
    """

    def __init__(self, start: float = 0.0, idle_real_s: float = 0.002) -> None:
        self._now = start
        self._idle_real_s = idle_real_s
        self._timers: list[list] = []
        self._seq = itertools.count()
        self._runner: asyncio.Task[None] | None = None

    def time(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self._schedule(self._now + seconds, wake)
        try:
            await fut
        finally:
            timer[3] = False

    def call_at(self, when: float, callback: Callable[[], None]) -> _VirtualTimer:
        return _VirtualTimer(self._schedule(when, callback))

    def timeout_at(self, when: float | None) -> AbstractAsyncContextManager[None]:
        return self._timeout_at(when)

    @asynccontextmanager
    async def _timeout_at(self, when: float | None) -> AsyncIterator[None]:
        if when is None:
            yield
            return
        task = asyncio.current_task()
        assert task is not None
        fired = False

        def expire() -> None:
            nonlocal fired
            if not done:
                fired = True
                task.cancel()

        done = False
        timer = self._schedule(when, expire)
        try:
            yield
        except asyncio.CancelledError:
            if fired and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            done = True
            timer[3] = False

    def _schedule(self, when: float, callback: Callable[[], None]) -> list:
        # [when, seq, callback, active]: a timer whose waiter left is skipped, not jumped to.
        timer = [when, next(self._seq), callback, True]
        heapq.heappush(self._timers, timer)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._advance())
        return timer

    async def _advance(self) -> None:
        loop = asyncio.get_running_loop()
        while self._timers:
            # Let everything that can run, run; then wait a little real time for threads.
            while True:
                for _ in range(4):
                    await asyncio.sleep(0)
                ready = getattr(loop, "_ready", ())
                if len(ready) == 0:
                    await asyncio.sleep(self._idle_real_s)
                    if len(getattr(loop, "_ready", ())) == 0:
                        break
            while self._timers and not self._timers[0][3]:
                heapq.heappop(self._timers)
            if not self._timers:
                break
            when, _, callback, _ = heapq.heappop(self._timers)
            self._now = max(self._now, when)
            callback()


class _VirtualTimer:
    __slots__ = ("_timer",)

    def __init__(self, timer: list) -> None:
        self._timer = timer

    def cancel(self) -> None:
        self._timer[3] = False  # skipped, not jumped to
