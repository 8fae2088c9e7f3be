"""Checks that run before anything is built: each failure is one line with the fix."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker.errors

import docker
from agentimage import config, proc
from agentimage.cosign import tool_missing
from agentimage.errors import AgentImageError, ExitCode
from agentimage.labels import REVISION_LABEL

TIMEOUT = 20
CLI_PACKAGE = "@anthropic-ai/claude-code"
NPM_TIMEOUT = 30


def _docker(*args: str) -> proc.Finished:
    return proc.run(["docker", *args], timeout=TIMEOUT)


def docker_client() -> str:
    path = shutil.which("docker")
    if not path:
        raise AgentImageError(
            "docker client not found on PATH; "
            "install docker-cli (see scripts/provision-docker-engine.sh)",
            ExitCode.ENVIRONMENT,
        )
    return path


def docker_engine() -> dict[str, object]:
    """`docker info` as a dict; raises when the engine does not answer."""
    docker_client()
    try:
        result = _docker("info", "--format", "{{json .}}")
    except proc.CommandTimedOut as exc:
        raise AgentImageError(
            f"Docker engine did not answer within {TIMEOUT} s; check dockerd", ExitCode.ENVIRONMENT
        ) from exc
    info: dict[str, object] = {}
    if result.returncode == 0:
        try:
            info = json.loads(result.stdout)
        except ValueError:
            info = {}
    server_errors = info.get("ServerErrors") if info else None
    if result.returncode != 0 or not info or server_errors or not info.get("ServerVersion"):
        raise AgentImageError(
            "Docker engine not reachable (is dockerd running and DOCKER_HOST right?); "
            "start it with scripts/provision-docker-engine.sh",
            ExitCode.ENVIRONMENT,
        )
    return info


def containerd_store(info: dict[str, object]) -> bool:
    """True when the engine uses the containerd image store (it can hold multi-platform images)."""
    status = info.get("DriverStatus") or []
    text = json.dumps(status) + str(info.get("Driver", ""))
    return "io.containerd.snapshotter" in text


def buildx(builder: str = "") -> None:
    result = _docker("buildx", "version")
    if result.returncode != 0:
        raise AgentImageError(
            "docker buildx is missing; install docker-buildx (the build needs BuildKit secrets)",
            ExitCode.ENVIRONMENT,
        )
    if builder:
        inspect = _docker("buildx", "inspect", builder)
        if inspect.returncode != 0:
            raise AgentImageError(
                f"buildx builder {builder!r} does not exist; list builders with docker buildx ls",
                ExitCode.ENVIRONMENT,
            )


def attestations(builder: str, info: dict[str, object]) -> None:
    """A release attaches provenance attestations, which the default `docker` builder can
    store and push only with the containerd image store."""
    if not builder and not containerd_store(info):
        raise AgentImageError(
            "a release attaches provenance attestations, which the default builder stores only "
            'in the containerd image store; enable "containerd-snapshotter" in '
            "/etc/docker/daemon.json or pass --builder with a docker-container builder",
            ExitCode.ENVIRONMENT,
        )


def cosign() -> None:
    """A pushed release attaches its SBOM (and signs) with cosign."""
    if not shutil.which("cosign"):
        raise tool_missing()


def multi_platform_load(platforms: tuple[str, ...], info: dict[str, object]) -> None:
    if len(platforms) > 1 and not containerd_store(info):
        raise AgentImageError(
            "loading a multi-platform image needs the containerd image store; enable "
            '"containerd-snapshotter" in /etc/docker/daemon.json or use invoke buildx --push',
            ExitCode.ENVIRONMENT,
        )


def _published_cache() -> Path:
    """Where versions the npm registry confirmed are remembered, one file per registry.

    npm never lets a published version change, so a confirmation stays true; only
    positive answers are kept. This saves the 0.3 s `npm view` on every warm build.
    """
    registry = (
        os.environ.get("npm_config_registry")  # noqa: SIM112 (npm reads the lower-case name)
        or os.environ.get("NPM_CONFIG_REGISTRY")
        or "default"
    )
    key = hashlib.sha256(registry.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "agentgate-agent-image" / f"published-cli-versions-{key}.txt"


def _remembered(version: str) -> bool:
    try:
        return version in _published_cache().read_text().split()
    except OSError:
        return False


def _remember(version: str) -> None:
    path = _published_cache()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as cache:
            cache.write(version + "\n")
    except OSError:
        pass  # a read-only or missing HOME only costs the next build another npm view


def cli_version_published(version: str) -> bool | None:
    """Does the npm registry have this CLI version? None when it cannot be asked.

    `npm view` costs well under a second; asking first turns a typo into a one-line error
    instead of a failed npm install minutes into a cold build. npm's own configuration
    (registry, proxy, CA) applies, so it asks the registry the build would install from.
    """
    if _remembered(version):
        return True
    npm = shutil.which("npm")
    if not npm:
        return None
    # no retries, 10 s at most: npm's default backoff stalls a minute when offline, and an
    # unanswered check only costs a warning
    argv = [npm, "view", "--fetch-retries=0", "--fetch-timeout=10000"]
    argv += [f"{CLI_PACKAGE}@{version}", "version"]
    try:
        result = proc.run(argv, timeout=NPM_TIMEOUT)
    except AgentImageError:
        return None
    if result.returncode == 0:
        published = version in result.stdout.split()
        if published:
            _remember(version)
        return published
    return False if "E404" in result.stderr else None


def cli_version(version: str) -> None:
    """Refuse a CLI version the npm registry does not have; warn when it cannot be asked."""
    found = cli_version_published(version)
    if found is False:
        raise AgentImageError(
            f"Claude Code version {version} does not exist on the npm registry; pick one from "
            f"npm view {CLI_PACKAGE} versions",
        )
    if found is None:
        print(
            f"warning: could not ask the npm registry whether {CLI_PACKAGE}@{version} exists "
            "(no npm, or registry unreachable); the build will tell",
            file=sys.stderr,
            flush=True,
        )


def base_image(variant: str, node_version: str, pull: bool = False) -> str:
    """The digest the variant's base image resolves to, as the build will see it: a wrong
    --node-version fails here, not in a build.

    pull=False (invoke build): the image in the local store when it is there (BuildKit
    starts from it), else what the registry (through the engine's mirrors) names now.
    pull=True (a release builds with --pull): what the registry names now. The build is then
    pinned to this digest, so the base.digest label names exactly the base it used."""
    ref = config.base_image(variant, node_version)
    client = docker.from_env(timeout=TIMEOUT)
    try:
        if not pull:
            try:
                local = client.images.get(ref)
            except docker.errors.ImageNotFound:
                local = None
            if local is not None and (digest := local_digest(ref, local.attrs)):
                return digest
        descriptor = client.api.inspect_distribution(ref).get("Descriptor") or {}
        return str(descriptor["digest"])
    except (docker.errors.DockerException, KeyError) as exc:
        reason = str(getattr(exc, "explanation", "") or exc).strip()
        fix = (
            "use --variant slim (or configure a registry mirror that holds node:*-alpine)"
            if variant == "alpine"
            else "check --node-version (a published node tag) and the registry mirror in "
            "/etc/docker/daemon.json"
        )
        raise AgentImageError(
            f"base image {ref} cannot be pulled ({reason}); {fix}", ExitCode.REGISTRY
        ) from exc
    finally:
        client.close()


def local_digest(ref: str, attrs: dict[str, object]) -> str:
    """The digest a local image was pulled by (RepoDigests), '' when it has none (built
    here, or loaded from an archive: the registry is asked instead)."""
    repository = config.qualified_image(ref).rsplit(":", 1)[0]
    for entry in attrs.get("RepoDigests") or []:
        name, _, digest = str(entry).partition("@")
        if config.qualified_image(name) == repository and digest:
            return digest
    return ""


def build_environment(
    builder: str = "", platforms: tuple[str, ...] = (), load: bool = True
) -> dict[str, object]:
    """Client, engine, buildx (and the builder), then the load-store check.

    The engine and buildx checks are two docker processes of ~50 ms each on every build, so
    they run side by side; an unreachable engine is reported first, as the root cause.
    """
    docker_client()
    with ThreadPoolExecutor(max_workers=1) as pool:
        buildx_checked = pool.submit(buildx, builder)
        info = docker_engine()
        buildx_checked.result()
    if load:
        multi_platform_load(platforms, info)
    return info


def test_runner(command: str) -> None:
    """The release test command's program is on PATH, and `python -m MODULE` can import
    MODULE: a missing runner is named before a build, not blamed on the image after it."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise AgentImageError(
            f"test command {command!r} does not parse ({exc}); fix its quoting"
        ) from exc
    words = [w for w in words if "=" not in w.split("/")[0]] or [""]  # skip VAR=value
    program = words[0]
    if not shutil.which(program):
        raise AgentImageError(
            f"the release test command needs {program!r}, which is not on PATH; install it "
            f"(pip install -e '.[test]' for the image tests) or pass --test-command",
            ExitCode.ENVIRONMENT,
        )
    if len(words) > 2 and words[1] == "-m":
        probe = (
            "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"
        )
        if not proc.run([program, "-c", probe, words[2]], timeout=TIMEOUT).ok:
            raise AgentImageError(
                f"the release test command runs {words[2]}, which {program} cannot import; "
                f"install it (pip install -e '.[test]') or pass --test-command",
                ExitCode.ENVIRONMENT,
            )


def local_image(ref: str, source_sha: str, git_tag: str) -> None:
    """--publish-only publishes the image its release tested: it must still be in the local
    store, built from the release's source commit."""
    label = f'{{{{index .Config.Labels "{REVISION_LABEL}"}}}}'
    found = _docker("image", "inspect", "--format", label, ref)
    if not found.ok:
        raise AgentImageError(
            f"the tested image {ref} of {git_tag} is not in the local image store; publish from "
            "the host that made the --no-push release, or make a new release",
            ExitCode.ENVIRONMENT,
        )
    revision = found.stdout.strip()
    if revision != source_sha:
        raise AgentImageError(
            f"{ref} was built from {revision[:12] or 'an unknown commit'}, not from "
            f"{source_sha[:12]}; make a new release instead",
            ExitCode.ENVIRONMENT,
        )
