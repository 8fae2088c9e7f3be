"""Pure, unit-tested logic behind the AgentGate agent image tooling (tasks.py is the CLI)."""

from agentimage.errors import AgentImageError, ExitCode

__all__ = ["AgentImageError", "ExitCode"]
