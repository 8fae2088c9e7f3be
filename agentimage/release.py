"""`invoke release`: guards and plan, the plan printed from a dry run of the real steps, then
the steps themselves (see releasesteps for the order and the recovery rule).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from agentimage import preflight, supplychain, vulnscan
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagetools import Registry
from agentimage.releaseplan import Preconditions, ReleasePlan, ReleaseSettings, plan_release
from agentimage.releasesteps import Context, steps_for
from agentimage.runner import HostRunner, RecordingRunner
from agentimage.tags import sha_tag


def environment(plan: ReleasePlan, settings: ReleaseSettings, guards: Preconditions) -> ReleasePlan:
    """Host checks, after the plan: test runner, engine and buildx, CLI version, base image.
    The plan comes back with the digest the base resolved to: the release builds from it."""
    if plan.local_image:
        guards.check(preflight.docker_engine)
        guards.check(preflight.local_image, plan.local_image, plan.source_sha, plan.git_tag)
        return plan
    if plan.pushed_digest:
        return plan  # nothing is built or tested
    guards.check(preflight.test_runner, settings.test_command)
    guards.check(preflight.cli_version, settings.build.claude_code_version)
    info = guards.check(preflight.build_environment, settings.build.builder)
    if info is None:
        return plan
    guards.check(preflight.attestations, settings.build.builder, info)
    digest = guards.check(
        preflight.base_image, settings.build.variant, settings.build.node_version, True
    )
    return replace(plan, base_digest=digest or "")


def prepare(
    root: Path, settings: ReleaseSettings, *, dry_run: bool, registry: Registry | None = None
) -> ReleasePlan:
    """Guards and plan. A real run stops at the first failed guard; a dry run collects them
    all in plan.problems."""
    guards = Preconditions(collect=dry_run)
    if settings.push:
        guards.check(preflight.buildx)
        guards.check(preflight.cosign)
    reads = registry or Registry(HostRunner(echo=False))
    plan = environment(plan_release(root, settings, reads, guards), settings, guards)
    if settings.push:
        gate = guards.check(
            vulnscan.gate, settings.vulnerability_scan, settings.vulnerability_fail_on
        )
        plan = replace(plan, scan=gate or plan.scan)
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
        *(supply_lines(plan) if plan.push else []),
    ]


def supply_lines(plan: ReleasePlan) -> list[str]:
    sign = (
        f"yes, with {plan.signing_key}: signatures and SBOM attestations verified before git "
        "and any tag"
        if plan.signing_key
        else f"no: {supplychain.NOT_SIGNING.removeprefix('not signing: ')}"
    )
    scan = (
        f"grype, fails on {plan.scan.fail_on} or worse"
        if plan.scan.scanner
        else f"no: {plan.scan.reason}"
    )
    return [f"  sign   {sign}", f"  scan   {scan}"]


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
    if plan.push:
        lines.append(f"  signed    {'yes, ' + plan.signing_key if plan.signing_key else 'no'}")
        sboms = sorted(supplychain.release_dir(ctx).glob("sbom-*.cdx.json"))
        lines.append(f"  sbom      {' '.join(str(p) for p in sboms) or 'attached earlier'}")
    if ctx.held or plan.tags.held_back:
        lines.append(f"  held back {' '.join((*plan.tags.held_back, *ctx.held))} (newer releases)")
    return lines
