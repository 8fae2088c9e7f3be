"""Fixtures: tests/support/sandbox_fixtures.py, shared with tests/security."""

from sandbox_fixtures import *  # noqa: F403
