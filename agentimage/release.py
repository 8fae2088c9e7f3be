"""`invoke release`: guards and plan, the plan printed from a dry run of the real steps, then
the steps themselves (see releasesteps for the order and the recovery rule).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from agentimage import preflight, supplychain, vulnscan
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagetools import Registry, Runner
from agentimage.releaseplan import (
    Preconditions,
    ReleasePlan,
    ReleaseSettings,
    each_line,
    plan_release,
)
from agentimage.releasesteps import Context, Step, steps_for
from agentimage.runner import HostRunner, RecordingRunner


def environment(plan: ReleasePlan, settings: ReleaseSettings, guards: Preconditions) -> ReleasePlan:
    """Host checks, after the plan: test runner, engine and buildx (with a store that keeps
    attestations), and for each line to build its CLI version and base image. The plan comes
    back with the digest each line's base resolved to: the release builds from it."""
    if plan.local_image:
        guards.check(preflight.docker_engine)
        for one in plan.all_lines:
            guards.check(preflight.local_image, one.local_image, one.source_sha, one.git_tag)
        return plan
    building = [one for one in plan.all_lines if not one.pushed_digest]
    if not building:
        return plan  # nothing is built or tested
    guards.check(preflight.test_runner, settings.test_command)
    for one in building:
        guards.check(preflight.cli_version, settings.for_line(one.line).build.claude_code_version)
    info = guards.check(preflight.build_environment, settings.build.builder)
    if info is None:
        return plan
    guards.check(preflight.attestations, settings.build.builder, info)
    digests: dict[str, str] = {}
    for one in building:
        options = settings.for_line(one.line).build
        found = guards.check(preflight.base_image, options.variant, options.node_version, True)
        digests[one.line] = found or ""
    return each_line(
        plan, lambda one: replace(one, base_digest=digests.get(one.line, one.base_digest))
    )


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
        plan = each_line(plan, lambda one: replace(one, scan=gate or one.scan))
    return replace(plan, problems=tuple(guards.failed))


def line_name(plan: ReleasePlan) -> str:
    default = " (default)" if plan.default and plan.others else ""
    return f"node {plan.line}{default}" if plan.line else "image"


def header(plan: ReleasePlan) -> list[str]:
    kind = "prerelease" if plan.version.prerelease else "stable release"
    how = {
        "new": f"--bump {plan.bump} from {plan.current}",
        "resume": "resuming an unfinished release",
        "publish": f"publishing the --no-push release {plan.git_tag}",
    }[plan.mode]
    out = [
        f"release {plan.git_tag} ({kind}; {how})",
        f"  branch {plan.branch} at {plan.head_sha[:7]}, image source {plan.source_sha[:7]}",
        f"  image  {plan.repository}",
    ]
    for one in plan.all_lines:
        held = f"; held back (would go backwards): {' '.join(one.tags.held_back)}"
        out.append(
            f"  tags   {line_name(one)}: immutable: {' '.join(one.tags.immutable)}; "
            f"floating: {' '.join(one.tags.floating) or '(none)'}"
            + (held if one.tags.held_back else "")
        )
    out.append(f"  push   {'yes' if plan.push else 'no (--no-push: local only)'}")
    return out + (supply_lines(plan) if plan.push else [])


def contexts(
    plan: ReleasePlan, settings: ReleaseSettings, root: Path, runner: Runner, registry: Registry
) -> list[Context]:
    """One step context per line: its plan, its build options, its digest."""
    return [
        Context(one, settings.for_line(one.line), root, runner, registry, digest=one.pushed_digest)
        for one in plan.all_lines
    ]


def in_order(plan: ReleasePlan, ctxs: list[Context]) -> Iterator[tuple[int, Step, Context]]:
    """(number, step, context) as a release runs them: each step for every line in turn
    (a `once` step for the default line only)."""
    for number, step in enumerate(steps_for(plan), 1):
        for ctx in ctxs[:1] if step.once else ctxs:
            yield number, step, ctx


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
    ctxs = contexts(plan, settings, root, recorder, Registry(recorder))
    out = header(plan)
    for number, step, ctx in in_order(plan, ctxs):
        reason = step.skip(ctx.plan)
        which = "" if step.once or not plan.others else f" ({line_name(ctx.plan)})"
        out.append(f"  {number}. {step.name}{which}" + (f"  [skip: {reason}]" if reason else ""))
        if not reason:
            step.run(ctx)
            out += [f"       $ {command}" for command in recorder.take()]
    return out


def execute(
    plan: ReleasePlan, settings: ReleaseSettings, root: Path, *, registry: Registry | None = None
) -> Context:
    """Run the steps in order; a failure says what state it left and what a re-run does.
    `root` is the work tree's top (what prepare() planned in)."""
    runner = HostRunner()
    registry = registry or Registry(runner)
    ctxs = contexts(plan, settings, root, runner, registry)
    ctx = ctxs[0]  # the default line's: where git is recorded
    ctx.recorded = plan.mode != "new"  # the release commit exists: a re-run finishes it
    again = "invoke release" + (f" --publish-only {plan.git_tag}" if plan.mode == "publish" else "")
    try:
        for _, step, line_ctx in in_order(plan, ctxs):
            if not step.skip(line_ctx.plan):
                line_ctx.recorded = ctx.recorded
                step.run(line_ctx)
    except KeyboardInterrupt:
        if ctx.recorded and not plan.push:
            raise AgentImageError(
                f"interrupted after {plan.git_tag} was recorded in git (local release); finish "
                f"with docker tag {plan.test_ref} {plan.repository}:TAG for "
                f"{' '.join((*plan.version_tags, *plan.tags.floating))} (and each other line's "
                "tags on its own sha tag)",
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
    return ctxs


def summary(plan: ReleasePlan, ctxs: list[Context]) -> list[str]:
    """What a release prints at the end: for each line, its digest, the tags it got and, when
    pushed, its signature and SBOMs."""
    out = []
    for ctx in ctxs:
        one = ctx.plan
        where = f"{one.repository}@{ctx.digest}" if one.push else one.test_ref
        label = f" ({line_name(one)})" if plan.others else ""
        out.append(f"released {one.git_tag}{label} as {where}")
        out.append(f"  digest    {ctx.digest or 'local only (--no-push)'}")
        tags = (*one.version_tags, one.test_ref.rsplit(":", 1)[1], *ctx.moved)
        out.append(f"  tags      {' '.join(tags)}")
        if one.push:
            out.append(f"  signed    {'yes, ' + one.signing_key if one.signing_key else 'no'}")
            sboms = sorted(supplychain.release_dir(ctx).glob("sbom-*.cdx.json"))
            out.append(f"  sbom      {' '.join(str(p) for p in sboms) or 'attached earlier'}")
        if ctx.held or one.tags.held_back:
            out.append(f"  held back {' '.join((*one.tags.held_back, *ctx.held))} (newer releases)")
    return out
