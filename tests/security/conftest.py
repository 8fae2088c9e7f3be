"""Fixtures: tests/support/sandbox_fixtures.py, shared with tests/e2e."""

from sandbox_fixtures import *  # noqa: F403
