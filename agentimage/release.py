"""`invoke release`: guards and plan, the plan printed from a dry run of the real steps, then
the steps themselves (see releasesteps for the order and the recovery rule).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

from agentimage import preflight
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagetools import Registry
from agentimage.releaseplan import Preconditions, ReleasePlan, ReleaseSettings, plan_release
from agentimage.releasesteps import Context, steps_for
from agentimage.runner import HostRunner, RecordingRunner
from agentimage.tags import sha_tag

REVISION_LABEL = "org.opencontainers.image.revision"


def check_test_runner(command: str) -> None:
    """The test command's program is on PATH, and `python -m MODULE` can import MODULE:
    a missing runner is named before a build, not blamed on the image after it."""
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
        found = subprocess.run([program, "-c", probe, words[2]], capture_output=True, check=False)
        if found.returncode != 0:
            raise AgentImageError(
                f"the release test command runs {words[2]}, which {program} cannot import; "
                f"install it (pip install -e '.[test]') or pass --test-command",
                ExitCode.ENVIRONMENT,
            )


def check_local_image(plan: ReleasePlan) -> None:
    """--publish-only publishes the image that release tested: it must still be here."""
    found = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            f'{{{{index .Config.Labels "{REVISION_LABEL}"}}}}',
            plan.local_image,
        ],
        text=True,
        capture_output=True,
        check=False,
        timeout=60,
    )
    if found.returncode != 0:
        raise AgentImageError(
            f"the tested image {plan.local_image} of {plan.git_tag} is not in the local image "
            "store; publish from the host that made the --no-push release, or make a new release",
            ExitCode.ENVIRONMENT,
        )
    if found.stdout.strip() != plan.source_sha:
        raise AgentImageError(
            f"{plan.local_image} was built from {found.stdout.strip()[:12] or 'an unknown commit'}"
            f", not from {plan.source_sha[:12]}; make a new release instead",
            ExitCode.ENVIRONMENT,
        )


def environment(plan: ReleasePlan, settings: ReleaseSettings, guards: Preconditions) -> None:
    """Host checks, after the plan: test runner, engine and buildx, CLI version, base image."""
    if plan.local_image:
        guards.check(preflight.docker_engine)
        guards.check(check_local_image, plan)
        return
    if plan.pushed_digest:
        return  # nothing is built or tested
    guards.check(check_test_runner, settings.test_command)
    guards.check(preflight.cli_version, settings.build.claude_code_version)
    info = guards.check(preflight.build_environment, settings.build.builder)
    if info is not None:
        guards.check(preflight.base_image, settings.build.variant, settings.build.node_version)


def prepare(
    root: Path, settings: ReleaseSettings, *, dry_run: bool, registry: Registry | None = None
) -> ReleasePlan:
    """Guards and plan. A real run stops at the first failed guard; a dry run collects them
    all in plan.problems."""
    guards = Preconditions(collect=dry_run)
    if settings.push:
        guards.check(preflight.buildx)
    reads = registry or Registry(HostRunner(echo=False))
    plan = plan_release(root, settings, reads, guards)
    environment(plan, settings, guards)
    return replace(plan, problems=tuple(guards.failed))


def header(plan: ReleasePlan) -> list[str]:
    kind = "prerelease" if plan.version.prerelease else "stable release"
    how = {
        "new": f"--bump {plan.bump} from {plan.current}",
        "resume": "resuming an unfinished release",
        "publish": f"publishing the --no-push release {plan.git_tag}",
    }[plan.mode]
    held = f"; held back (would go backwards): {' '.join(plan.tags.held_back)}"
    return [
        f"release {plan.git_tag} ({kind}; {how})",
        f"  branch {plan.branch} at {plan.head_sha[:7]}, image source {plan.source_sha[:7]}",
        f"  image  {plan.repository}",
        f"  tags   immutable: {' '.join(plan.tags.immutable)}; "
        f"floating: {' '.join(plan.tags.floating) or '(none)'}"
        + (held if plan.tags.held_back else ""),
        f"  push   {'yes' if plan.push else 'no (--no-push: local only)'}",
    ]


def describe(plan: ReleasePlan, settings: ReleaseSettings, root: Path) -> list[str]:
    """The plan: the real steps run against a RecordingRunner, listing what each would run."""
    recorder = RecordingRunner()
    ctx = Context(plan, settings, root, recorder, Registry(recorder), digest=plan.pushed_digest)
    lines = header(plan)
    for number, step in enumerate(steps_for(plan), 1):
        reason = step.skip(plan)
        lines.append(f"  {number}. {step.name}" + (f"  [skip: {reason}]" if reason else ""))
        if not reason:
            step.run(ctx)
            lines += [f"       $ {command}" for command in recorder.take()]
    return lines


def execute(
    plan: ReleasePlan, settings: ReleaseSettings, root: Path, *, registry: Registry | None = None
) -> Context:
    """Run the steps in order; a failure says what state it left and what a re-run does.
    `root` is the work tree's top (what prepare() planned in)."""
    runner = HostRunner()
    registry = registry or Registry(runner)
    ctx = Context(plan, settings, root, runner, registry, digest=plan.pushed_digest)
    ctx.recorded = plan.mode != "new"  # the release commit exists: a re-run finishes it
    again = "invoke release" + (f" --publish-only {plan.git_tag}" if plan.mode == "publish" else "")
    try:
        for step in steps_for(plan):
            if not step.skip(plan):
                step.run(ctx)
    except KeyboardInterrupt:
        if ctx.recorded and not plan.push:
            raise AgentImageError(
                f"interrupted after {plan.git_tag} was recorded in git (local release); finish "
                f"with docker tag {plan.test_ref} {plan.repository}:TAG for "
                f"{' '.join((plan.version_tag, *plan.tags.floating))}",
                ExitCode.INTERRUPTED,
            ) from None
        if ctx.recorded:
            raise AgentImageError(
                f"interrupted after {plan.git_tag} was recorded in git; re-run {again} to "
                "finish publishing it",
                ExitCode.INTERRUPTED,
            ) from None
        raise AgentImageError(
            f"interrupted before {plan.git_tag} was recorded: git and VERSION are unchanged, "
            "nothing was released; re-run invoke release",
            ExitCode.INTERRUPTED,
        ) from None
    except AgentImageError as exc:
        if not ctx.recorded or exc.code == ExitCode.INTERRUPTED:
            raise
        raise AgentImageError(
            f"{exc.message}; {plan.git_tag} is already recorded in git: re-run {again} to "
            "finish publishing it",
            exc.code,
        ) from exc
    return ctx


def summary(plan: ReleasePlan, ctx: Context) -> list[str]:
    where = f"{plan.repository}@{ctx.digest}" if plan.push else plan.test_ref
    lines = [f"released {plan.git_tag} as {where}"]
    lines.append(f"  digest    {ctx.digest or 'local only (--no-push)'}")
    tags = (plan.version_tag, sha_tag(plan.source_sha), *ctx.moved)
    lines.append(f"  tags      {' '.join(tags)}")
    if ctx.held or plan.tags.held_back:
        lines.append(f"  held back {' '.join((*plan.tags.held_back, *ctx.held))} (newer releases)")
    return lines
