"""Fixtures for Herald's integration tests: real herald processes, stopped and checked after
each test (a crash, a non-zero exit after SIGTERM or a hang fails the test)."""

import faulthandler
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from herald_it import Herald, herald_bin  # noqa: E402

# A hard bound per test, on top of the per-operation timeouts: a test that somehow blocks
# dumps every thread's stack and ends the run instead of hanging it.
TEST_WATCHDOG_S = 60


def pytest_configure(config):
    if not os.access(herald_bin(), os.X_OK):
        raise pytest.UsageError(f"herald binary not found at {herald_bin()} (set HERALD_BIN)")


@pytest.fixture(autouse=True)
def _watchdog():
    faulthandler.dump_traceback_later(TEST_WATCHDOG_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def herald_factory():
    """start(*extra_args, **flags) → Herald. Flags: heartbeat_ms=300 → --heartbeat-ms 300; a list
    value repeats the flag. Every process started is stopped at teardown (clients closed, SIGTERM,
    SIGKILL fallback) and the test fails if one crashed or did not exit cleanly."""
    started = []

    def start(*extra, **flags):
        h = Herald(extra, flags)
        started.append(h)
        return h

    yield start
    errors = [e for e in (h.stop() for h in started) if e]
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def herald(herald_factory):
    """A herald with the harness defaults (memory engine, 2 threads, port 0)."""
    return herald_factory()
