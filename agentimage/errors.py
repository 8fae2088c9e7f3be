"""The one exception type of the package: a one-line "what is wrong; how to fix it"."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Distinct exit codes, so scripts can tell failures apart (documented in the README)."""

    USAGE = 2  # a flag or configuration value is invalid
    GIT_STATE = 3  # repository state forbids the operation (dirty, branch, tags, VERSION)
    NOTHING_TO_RELEASE = 4  # --bump auto found no releasable commit
    ENVIRONMENT = 5  # docker client, engine or buildx missing or unreachable
    REGISTRY = 6  # registry unreachable, not logged in, or a tag conflict
    BUILD_FAILED = 7
    TEST_FAILED = 8
    PUBLISH_FAILED = 9  # pushing an image or the git release failed
    SUPPLY_CHAIN = 10  # SBOM, signature, attestation or provenance missing or not verified
    VULNERABLE = 11  # the vulnerability scan found what the release may not ship
    CHANGED = 12  # update-cli: a pin was updated (with --dry-run: would be); not a failure
    NPM = 13  # update-cli: the npm registry could not be asked, or lists no release
    INTERRUPTED = 130  # SIGINT (Ctrl-C): the message says what state was left, as shells do


class AgentImageError(Exception):
    """A failure the user can fix: the message says what is wrong and what to do."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message
