"""A signed release end to end: a cosign key pair made here, `invoke release` to a loopback
registry, then what a user would check, with cosign and `docker buildx imagetools inspect`:
the released tag is signed, carries a signed SBOM naming the CLI version, and carries SLSA
provenance (mode=max) that holds none of the build's secrets; the base.digest label is the
base BuildKit used; CHANGELOG.md and the tag list the commits; `invoke verify-release`
verifies it and refuses another key. A cosign that fails to store its signature (a wrapper
that only pretends to sign) stops the release before git and before any tag.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from releasekit import (
    LINES,
    ReleaseRepo,
    ThrowawayCA,
    make_release_repo,
    make_throwaway_ca,
    registry_tags,
    remove_local_images,
    run,
)

import docker
from agentimage import config

# The default line's pin and base: the release suite releases that line (releasekit)
CLI_VERSION = LINES.pins[LINES.default]
BASE = config.base_image("slim", LINES.default)


@dataclass
class Keys:
    private: Path
    public: Path
    password: str


def cosign_keys(where: Path, password: str) -> Keys:
    where.mkdir(parents=True, exist_ok=True)
    run(["cosign", "generate-key-pair"], cwd=where, COSIGN_PASSWORD=password)
    return Keys(where / "cosign.key", where / "cosign.pub", password)


@dataclass
class SignedRelease:
    repo: ReleaseRepo
    keys: Keys
    ca: ThrowawayCA
    secrets: dict[str, str]  # what the release's environment held that must leak nowhere
    result: subprocess.CompletedProcess[str]
    commits: dict[str, str]  # subject -> sha

    @property
    def ref(self) -> str:
        return f"{self.repo.registry}/{self.repo.image}:v0.2.0"


@pytest.fixture(scope="module")
def signed(
    tmp_path_factory: pytest.TempPathFactory, registry: str, npm_registry: str
) -> Iterator[SignedRelease]:
    base = tmp_path_factory.mktemp("signed-release")
    repo = make_release_repo(base, registry, npm_registry)
    keys = cosign_keys(base / "keys", secrets.token_hex(16))
    ca = make_throwaway_ca(base)
    commits = {}
    for subject in ("fix(entrypoint): name the path", "docs: notes", "feat: verify-release"):
        commits[subject] = repo.commit(subject)
    leaks = {"COSIGN_PASSWORD": keys.password, "GITHUB_TOKEN": f"ghp_{secrets.token_hex(18)}"}
    result = repo.invoke(
        "release",
        "--bump",
        "auto",
        INVOKE_RELEASE_SIGNING_KEY=str(keys.private),
        INVOKE_BUILD_CA_CERT=str(ca.bundle),
        **leaks,
    )
    try:
        yield SignedRelease(repo, keys, ca, leaks, result, commits)
    finally:
        remove_local_images(registry, repo.image)


def cosign(*args: str) -> str:
    return run(["cosign", *args])


def statements(stdout: str) -> list[dict]:
    return [
        json.loads(base64.b64decode(json.loads(line)["payload"]))
        for line in stdout.splitlines()
        if line.startswith("{")
    ]


def test_the_released_tag_is_signed_and_carries_a_signed_sbom_naming_the_cli(
    signed: SignedRelease,
) -> None:
    assert signed.result.returncode == 0, signed.result.stderr[-3000:]
    assert "not signing" not in signed.result.stderr
    public = str(signed.keys.public)
    verified = json.loads(
        cosign("verify", "--key", public, "--insecure-ignore-tlog=true", signed.ref)
    )
    optional = [payload["optional"] or {} for payload in verified]
    assert {"org.opencontainers.image.version": "0.2.0"}.items() <= optional[0].items()

    found = statements(
        cosign(
            "verify-attestation", "--key", public, "--insecure-ignore-tlog=true",
            "--type", "cyclonedx", signed.ref,
        )
    )  # fmt: skip
    [sbom] = [s["predicate"] for s in found if s["predicateType"] == "https://cyclonedx.org/bom"]
    components = {(c.get("group"), c["name"]): c for c in sbom["components"]}
    assert components[("@anthropic-ai", "claude-code")]["version"] == CLI_VERSION
    node = run(["docker", "run", "--rm", "--entrypoint", "node", signed.ref, "--version"])
    assert components[(None, "node")]["version"] == node.strip().removeprefix("v")
    debs = [c for c in sbom["components"] if c.get("purl", "").startswith("pkg:deb/debian/")]
    assert {"git", "curl", "tini", "jq"} <= {c["name"] for c in debs}
    platform = {p["name"]: p["value"] for p in sbom["metadata"]["component"]["properties"]}
    assert platform["agentgate:image:platform"] == "linux/amd64"

    # the tags a user sees: the release's, and cosign's signature and attestation
    tags = registry_tags(signed.repo.registry, signed.repo.image, cosign=True)
    digest = tags["v0.2.0"].removeprefix("sha256:")
    assert {f"sha256-{digest}.sig", f"sha256-{digest}.att"} <= set(tags)
    assert tags["latest"] == tags["v0.2.0"]


def provenance(ref: str) -> dict:
    out = run(
        ["docker", "buildx", "imagetools", "inspect", "--format", "{{json .Provenance}}", ref]
    )
    return json.loads(out)["SLSA"]


def test_the_released_tag_carries_max_provenance_without_secrets(signed: SignedRelease) -> None:
    assert signed.result.returncode == 0
    slsa = provenance(signed.ref)
    text = json.dumps(slsa)
    # mode=max: the build's full definition, its args and the ids of its secrets
    assert slsa["invocation"]["parameters"]["args"]["build-arg:CLAUDE_CODE_VERSION"] == CLI_VERSION
    assert {"id": "ca-certificates", "optional": True} in slsa["invocation"]["parameters"][
        "secrets"
    ]
    assert "buildConfig" in slsa
    # ... and nothing secret: not the CA's path or contents, not a password or a token
    assert str(signed.ca.bundle) not in text
    for needle in signed.ca.needles:
        assert needle.decode("latin-1") not in text
    for name, value in signed.secrets.items():
        assert value not in text, name
    key_body = "".join(signed.keys.private.read_text().splitlines()[1:-1])
    assert key_body[:40] not in text.replace("\\n", "")


def test_the_base_digest_label_is_the_base_buildkit_used(signed: SignedRelease) -> None:
    assert signed.result.returncode == 0
    out = run(
        ["docker", "buildx", "imagetools", "inspect", "--format", "{{json .Image}}", signed.ref]
    )
    labels = json.loads(out)["config"]["Labels"]
    assert labels["org.opencontainers.image.base.name"] == f"docker.io/library/{BASE}"
    digest = labels["org.opencontainers.image.base.digest"]
    client = docker.from_env()
    try:  # what the tag names now, asked through the engine (and its mirrors)
        resolved = client.api.inspect_distribution(BASE)["Descriptor"]["digest"]
    finally:
        client.close()
    assert digest == resolved
    # BuildKit's own record of what FROM pulled
    materials = provenance(signed.ref)["materials"]
    [base] = [m for m in materials if m["uri"].startswith("pkg:docker/node@")]
    assert f"sha256:{base['digest']['sha256']}" == digest


def test_changelog_and_tag_list_the_commits(signed: SignedRelease) -> None:
    assert signed.result.returncode == 0
    repo = signed.repo
    assert repo.git("log", "-1", "--format=%s") == "release: v0.2.0"
    changed = repo.git("show", "--name-only", "--format=", "HEAD").split()
    assert sorted(changed) == ["CHANGELOG.md", "VERSION"]
    text = (repo.path / "CHANGELOG.md").read_text()
    fix = signed.commits["fix(entrypoint): name the path"][:7]
    feat = signed.commits["feat: verify-release"][:7]
    section = text.split("## v0.2.0", 1)[1]
    features, fixes = section.split("### Features", 1)[1].split("### Fixes", 1)
    assert f"- verify-release ({feat})" in features  # with the first commit, feat: initial...
    assert f"- entrypoint: name the path ({fix})" in fixes
    assert "notes" not in section  # docs: is not a change users see
    message = repo.git("tag", "-l", "--format=%(contents)", "v0.2.0")
    assert f"- verify-release ({feat})" in message
    assert f"- entrypoint: name the path ({fix})" in message


def test_verify_release_verifies_it_and_refuses_another_key(signed: SignedRelease) -> None:
    assert signed.result.returncode == 0
    ok = signed.repo.invoke("verify-release", "v0.2.0", "--key", str(signed.keys.public))
    assert ok.returncode == 0, ok.stderr
    for expected in ("verified v0.2.0", "signature", "sbom", f"claude-code {CLI_VERSION}",
                     "provenance linux/amd64"):  # fmt: skip
        assert expected in ok.stdout, expected

    other = cosign_keys(signed.repo.path.parent / "other-keys", "x")
    refused = signed.repo.invoke("verify-release", "v0.2.0", "--key", str(other.public))
    assert refused.returncode == 10
    [line] = [ln for ln in refused.stderr.splitlines() if ln.strip()]
    assert line.startswith("error: no valid signature on ")


def pretending_cosign(bin_dir: Path) -> Path:
    """A cosign that says it signed and stores nothing; every other command is real."""
    real = run(["sh", "-c", "command -v cosign"]).strip()
    bin_dir.mkdir()
    wrapper = bin_dir / "cosign"
    wrapper.write_text(f'#!/bin/sh\n[ "$1" = sign ] && exit 0\nexec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def test_an_unverifiable_signature_stops_the_release_before_git_and_tags(
    release_repo: ReleaseRepo, tmp_path: Path
) -> None:
    keys = cosign_keys(tmp_path / "keys", "pw")
    source = release_repo.git("rev-parse", "HEAD")
    before = release_repo.state(with_registry=False)
    path = f"{pretending_cosign(tmp_path / 'bin')}:{os.environ['PATH']}"
    result = release_repo.invoke(
        "release",
        "--bump",
        "patch",
        INVOKE_RELEASE_SIGNING_KEY=str(keys.private),
        COSIGN_PASSWORD=keys.password,
        PATH=path,
    )
    assert result.returncode == 10, result.stderr[-2000:]
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert "no valid signature on" in line
    assert release_repo.state(with_registry=False) == before  # git: nothing recorded
    tags = registry_tags(release_repo.registry, release_repo.repo)
    assert set(tags) == {f"sha-{source[:7]}"}  # no vX.Y.Z, no floating tag
