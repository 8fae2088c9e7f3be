"""The supply chain without Docker: the SBOM made from package databases, cosign's command
lines and output, the vulnerability gate, the verification of what a registry holds, and the
release plan's signing steps. The end-to-end release is tests/release/test_release_supply_chain.py.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from git_helpers import make_repo
from release_helpers import REPOSITORY, plan, pushed, settings

from agentimage import cosign, release, releaseplan, releaseverify, sbom, vulnscan
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagetools import RemoteImage, parse_platform_images, parse_provenance

DPKG_STATUS = """Package: git
Status: install ok installed
Architecture: amd64
Source: git (1:2.39.5-0+deb12u2)
Version: 1:2.39.5-0+deb12u2
Description: fast, scalable, distributed revision control system
 continuation line: not a field

Package: removed-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u10
"""

APK_INSTALLED = """C:Q1abc=
P:musl
V:1.2.5-r0
A:x86_64
L:MIT
o:musl

P:ripgrep
V:14.1.0-r0
A:x86_64
L:Unlicense OR MIT
o:rust-ripgrep
"""


def test_dpkg_status_lists_installed_packages_as_debian_purls() -> None:
    found = sbom.parse_dpkg_status(DPKG_STATUS, "debian-12")
    assert [(p.name, p.version) for p in found] == [
        ("git", "1:2.39.5-0+deb12u2"),
        ("libc6", "2.36-9+deb12u10"),
    ]
    assert found[0].purl == "pkg:deb/debian/git@1:2.39.5-0%2Bdeb12u2?arch=amd64&distro=debian-12"
    assert "upstream=glibc" in found[1].purl


def test_apk_database_lists_packages_as_alpine_purls() -> None:
    found = sbom.parse_apk_installed(APK_INSTALLED, "alpine-3.21")
    assert [(p.name, p.version, p.license) for p in found] == [
        ("musl", "1.2.5-r0", "MIT"),
        ("ripgrep", "14.1.0-r0", "Unlicense OR MIT"),
    ]
    assert found[1].purl == (
        "pkg:apk/alpine/ripgrep@14.1.0-r0?arch=x86_64&distro=alpine-3.21&upstream=rust-ripgrep"
    )


def _package(path: Path, name: str, version: str, **extra: object) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "package.json").write_text(json.dumps({"name": name, "version": version, **extra}))


def platform_files(tmp_path: Path, cli: str = "9.8.7") -> Path:
    """What supplychain copies out of one platform's image (sbom.COPIED names)."""
    root = tmp_path / "linux-amd64"
    root.mkdir()
    (root / "os-release").write_text('ID=debian\nVERSION_ID="12"\nNAME="Debian GNU/Linux"\n')
    (root / "packages").write_text(DPKG_STATUS)
    modules = root / "node_modules"
    _package(modules / "npm", "npm", "10.8.2", license="Artistic-2.0")
    _package(modules / "npm/node_modules/@npmcli/agent", "@npmcli/agent", "2.2.2")
    _package(modules / "npm/node_modules/semver", "semver", "7.6.3", license="ISC")
    (modules / "npm/node_modules/semver/lib").mkdir()
    (modules / "npm/node_modules/semver/lib/package.json").write_text('{"type": "module"}')
    _package(modules / "npm/docs", "npm-docs", "0.0.0")  # not under node_modules/: not a package
    (root / "claude-code.package.json").write_text(
        json.dumps({"name": "@anthropic-ai/claude-code", "version": cli})
    )
    return root


ENV = {"NODE_VERSION": "18.20.8", "YARN_VERSION": "1.22.22"}
SUBJECT = sbom.Subject(
    REPOSITORY, "sha256:" + "e" * 64, "linux/amd64", "0.2.0", "2026-01-02T03:04:05Z"
)


def test_the_sbom_names_the_os_packages_node_the_npm_tree_and_the_cli(tmp_path: Path) -> None:
    contents = sbom.read_contents(platform_files(tmp_path), "slim", ENV)
    assert sorted(p.name for p in contents.npm) == ["@npmcli/agent", "npm", "semver", "yarn"]
    text = sbom.document(contents, SUBJECT, "0.1.0")
    data = json.loads(text)
    assert data["specVersion"] == "1.6"
    names = {(c.get("group"), c["name"], c["version"]) for c in data["components"]}
    assert {
        ("@anthropic-ai", "claude-code", "9.8.7"),
        (None, "node", "18.20.8"),
        (None, "git", "1:2.39.5-0+deb12u2"),
        (None, "debian", "12"),
        (None, "yarn", "1.22.22"),
    } <= names
    [node] = [c for c in data["components"] if c["name"] == "node"]
    assert node["cpe"] == "cpe:2.3:a:nodejs:node.js:18.20.8:*:*:*:*:*:*:*"  # how scanners match
    assert sbom.summarize(text) == sbom.Summary("linux/amd64", "9.8.7", "18.20.8", 2, 9)
    # the same image gives the same bytes: a re-run re-attaches an identical document
    assert sbom.document(contents, SUBJECT, "0.1.0") == text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda root, env: env.pop("NODE_VERSION"), "declares no NODE_VERSION"),
        (lambda root, env: (root / "claude-code.package.json").write_text("{}"), "no readable"),
    ],
)
def test_an_image_the_sbom_cannot_describe_is_refused(tmp_path: Path, change, message) -> None:
    root, env = platform_files(tmp_path), dict(ENV)
    change(root, env)
    with pytest.raises(AgentImageError, match=message) as err:
        sbom.read_contents(root, "slim", env)
    assert err.value.code == ExitCode.SUPPLY_CHAIN


def test_signing_key_references_are_checked(tmp_path: Path) -> None:
    private = tmp_path / "cosign.key"
    private.write_text("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nx\n")
    public = tmp_path / "cosign.pub"
    public.write_text("-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n")
    assert cosign.check_key(str(private)) == str(private)
    assert cosign.check_key("env://KEY", {"KEY": "pem"}) == "env://KEY"
    assert cosign.check_key("awskms:///alias/release") == "awskms:///alias/release"
    for reference, message in (
        (str(tmp_path / "missing.key"), "is not a file"),
        (str(public), "holds no private key"),
        ("env://UNSET_KEY_VARIABLE", "which is not set"),
    ):
        with pytest.raises(AgentImageError, match=message) as err:
            cosign.check_key(reference, {})
        assert err.value.code == ExitCode.USAGE
    assert cosign.check_public_key(str(public)) == public
    with pytest.raises(AgentImageError, match="holds no public key"):
        cosign.check_public_key(str(private))


def test_cosign_command_lines_sign_offline_and_carry_the_release() -> None:
    ref = f"{REPOSITORY}@sha256:abc"
    argv = cosign.sign_argv(ref, "k.key", {"org.opencontainers.image.version": "0.2.0"})
    assert argv == ["cosign", "sign", "--key", "k.key", "--tlog-upload=false", "--yes",
                    "-a", "org.opencontainers.image.version=0.2.0", ref]  # fmt: skip
    attest = cosign.attest_argv(ref, "k.key", Path("s.json"), replace=True)
    assert attest[attest.index("--type") + 1] == "cyclonedx"
    assert "--replace" in attest
    assert "--replace" not in cosign.attest_argv(ref, "k.key", Path("s.json"), replace=False)
    assert "--insecure-ignore-tlog=true" in cosign.verify_argv(ref, Path("k.pub"), {})


def envelope(subject: str, predicate: dict) -> str:
    statement = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": cosign.SBOM_PREDICATE,
        "subject": [{"name": REPOSITORY, "digest": {"sha256": subject.removeprefix("sha256:")}}],
        "predicate": predicate,
    }
    payload = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps({"payloadType": "application/vnd.in-toto+json", "payload": payload})


def test_cosign_output_is_read_back() -> None:
    out = "\n".join([envelope("sha256:aa", {"x": 1}), "not json"])
    [statement] = cosign.parse_attestations(out)
    assert statement.subjects == ("sha256:aa",)
    assert statement.predicate == {"x": 1}
    verified = json.dumps([{"critical": {"image": {"docker-manifest-digest": "sha256:aa"}}}])
    assert cosign.signed_digests(verified + "\n") == ["sha256:aa"]


def test_registry_reads_are_parsed() -> None:
    index = {
        "manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
            {
                "digest": "sha256:b",
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
            {"digest": "sha256:c", "platform": {"os": "unknown", "architecture": "unknown"}},
        ]
    }
    assert parse_platform_images(json.dumps(index)) == [
        ("linux/amd64", "sha256:a"),
        ("linux/arm64/v8", "sha256:b"),
    ]
    assert parse_platform_images("{}", "r@sha256:z") == [("", "sha256:z")]  # one manifest
    assert parse_provenance('{"SLSA": {"buildType": "b"}}') == {"": {"buildType": "b"}}
    assert parse_provenance('{"linux/arm64": {"SLSA": {"a": 1}}}') == {"linux/arm64": {"a": 1}}


def fake_grype(bin_dir: Path, db_status: int, scan: int = 0) -> None:
    """A stand-in for grype's command line: the gate's decisions, not a scan."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "grype"
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = db ]; then echo "db status"; exit {db_status}; fi\n'
        f'echo "$@" >"{bin_dir}/scanned"\nexit {scan}\n'
    )
    script.chmod(0o755)


def test_the_vulnerability_gate_runs_only_where_it_can(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no grype at all
    off = vulnscan.gate("off", "high")
    assert (off.scanner, off.reason) == ("", "turned off (release.vulnerability_scan: off)")
    missing = vulnscan.gate("auto", "high")
    assert missing.scanner == ""
    assert "grype is not installed" in missing.reason
    with pytest.raises(AgentImageError, match="required but cannot run") as err:
        vulnscan.gate("required", "high")
    assert err.value.code == ExitCode.ENVIRONMENT

    fake_grype(tmp_path / "bin", db_status=1)
    assert "no usable vulnerability database" in vulnscan.gate("auto", "high").reason
    fake_grype(tmp_path / "bin", db_status=0)
    ready = vulnscan.gate("auto", "critical")
    assert ready.scanner == str(tmp_path / "bin" / "grype")
    assert vulnscan.scan_argv(ready.scanner, Path("/s.json"), "critical")[1:4] == [
        "sbom:/s.json",
        "--fail-on",
        "critical",
    ]
    with pytest.raises(AgentImageError, match="unknown"):
        vulnscan.gate("sometimes", "high")
    with pytest.raises(AgentImageError, match="severity"):
        vulnscan.gate("auto", "severe")


# ----- verification of what a registry holds, against a registry that holds it in memory


@dataclass
class Runner:
    dry: bool = False


@dataclass
class PublishedRegistry:
    """One published image: its labels, provenance, signatures and SBOMs, each changeable."""

    sbom_text: str
    base_digest: str = "sha256:" + "b" * 64
    labels: dict[str, str] = field(default_factory=dict)
    provenance_base: str = "b" * 64
    signed: set[str] = field(default_factory=lambda: {"sha256:index", "sha256:amd"})
    runner: Runner = field(default_factory=Runner)

    def inspect(self, ref: str) -> RemoteImage:
        values = {"version": "0.2.0", "revision": "c" * 40, "cli_version": "9.8.7", **self.labels}
        return RemoteImage(
            "sha256:index", values["version"], ("linux/amd64",), values["revision"],
            "docker.io/library/node:18-bookworm-slim", self.base_digest, values["cli_version"],
        )  # fmt: skip

    def platform_images(self, ref: str, planned: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        return [("linux/amd64", "sha256:amd")]

    def provenance(self, ref: str) -> dict[str, dict[str, object]]:
        material = {"uri": "pkg:docker/node@18", "digest": {"sha256": self.provenance_base}}
        return {"": {"buildType": "buildkit", "materials": [material]}}

    def signatures(self, ref: str, public_key: Path, annotations: dict[str, str]) -> list[str]:
        digest = ref.rsplit("@", 1)[1]
        if digest not in self.signed:
            raise AgentImageError(f"no valid signature on {ref}: none", ExitCode.SUPPLY_CHAIN)
        return [digest]

    def attestations(self, ref: str, public_key: Path) -> list[cosign.Statement]:
        digest = ref.rsplit("@", 1)[1]
        return cosign.parse_attestations(envelope(digest, json.loads(self.sbom_text)))

    def attached_sbom(self, ref: str) -> str:
        return self.sbom_text


@pytest.fixture
def published(tmp_path: Path) -> PublishedRegistry:
    contents = sbom.read_contents(platform_files(tmp_path), "slim", ENV)
    return PublishedRegistry(sbom.document(contents, SUBJECT, "0.1.0"))


EXPECTED = releaseverify.Expected("0.2.0", "c" * 40, "9.8.7", ("linux/amd64",))


def verify(registry: PublishedRegistry, public_key: Path | None = Path("k.pub")) -> list[str]:
    return releaseverify.verify_image(registry, REPOSITORY, "sha256:index", public_key, EXPECTED)  # type: ignore[arg-type]


def test_a_complete_release_verifies(published: PublishedRegistry) -> None:
    lines = verify(published)
    text = "\n".join(lines)
    assert "signature" in lines[0]
    assert "provenance linux/amd64" in text
    assert "claude-code 9.8.7, node 18.20.8" in text
    assert "(unsigned)" in "\n".join(verify(published, None))


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda r: r.labels.update(version="0.1.9"), "version label '0.1.9', expected 0.2.0"),
        (lambda r: r.labels.update(revision="d" * 40), "revision label"),
        (lambda r: setattr(r, "base_digest", ""), "no base.name/base.digest labels"),
        (lambda r: setattr(r, "provenance_base", "f" * 64), "does not name the base image"),
        (lambda r: r.signed.discard("sha256:amd"), "no valid signature on"),
        (lambda r: r.signed.discard("sha256:index"), "no valid signature on"),
        (lambda r: r.labels.update(cli_version="2.1.198"), "CLI label 2.1.198"),
    ],
    ids=[
        "version",
        "revision",
        "base-label",
        "provenance-base",
        "platform-unsigned",
        "index-unsigned",
        "cli",
    ],
)
def test_what_does_not_verify_is_named(published: PublishedRegistry, tamper, message) -> None:
    tamper(published)
    with pytest.raises(AgentImageError, match=message) as err:
        verify(published)
    assert err.value.code == ExitCode.SUPPLY_CHAIN


def test_an_sbom_of_another_cli_is_refused(tmp_path: Path) -> None:
    contents = sbom.read_contents(platform_files(tmp_path, cli="2.1.100"), "slim", ENV)
    registry = PublishedRegistry(sbom.document(contents, SUBJECT, "0.1.0"))
    with pytest.raises(AgentImageError, match=r"names Claude Code 2\.1\.100"):
        verify(registry)


def test_a_dry_run_only_lists_the_reads(published: PublishedRegistry) -> None:
    published.runner.dry = True
    published.signed.clear()  # would fail a real run
    published.signed.add("sha256:index")
    published.signed.add("sha256:amd")
    published.labels.update(version="9.9.9")
    assert verify(published) == []


# ----- the release plan's supply-chain steps


@pytest.fixture
def key_pair(tmp_path: Path) -> tuple[Path, Path]:
    subprocess.run(
        ["cosign", "generate-key-pair"],
        cwd=tmp_path,
        env={**os.environ, "COSIGN_PASSWORD": "pw"},
        check=True,
        capture_output=True,
    )
    return tmp_path / "cosign.key", tmp_path / "cosign.pub"


def test_a_signed_plan_signs_attests_and_verifies_before_git(
    tmp_path: Path, key_pair, monkeypatch
) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", "pw")
    work, _ = make_repo(tmp_path / "repo")
    private, _ = key_pair
    result = plan(work, signing_key=str(private))
    assert result.signing_key == str(private)
    assert "BEGIN PUBLIC KEY" in result.public_key
    described = release.describe(result, settings(signing_key=str(private)), work)
    ran = [line.strip().removeprefix("$ ") for line in described if line.strip().startswith("$ ")]
    order = [
        "docker push",
        "docker create --name agentimage-sbom-",
        "write sbom-linux-amd64.cdx.json",
        "cosign attest --key",
        "cosign sign --key",
        "cosign verify --key",
        "cosign verify-attestation --key",
        "git push --atomic",
        ":v0.1.1",
        ":latest",
    ]
    positions = [next(i for i, c in enumerate(ran) if text in c) for text in order]
    assert positions == sorted(positions), ran
    assert any(line.strip() == f"sign   yes, with {private}: signatures and SBOM attestations "
               "verified before git and any tag" for line in described)  # fmt: skip
    scan = next(line for line in described if "vulnerability scan" in line)
    assert "[skip: not scanned:" in scan or "grype" in scan


def test_without_a_key_the_plan_says_it_does_not_sign(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path / "repo")
    described = release.describe(plan(work), settings(), work)
    assert any("sign   no: no signing key is configured" in line for line in described)
    assert any("attach the SBOM (unsigned)" in line for line in described)
    assert any("cosign attach sbom --sbom" in line for line in described)
    assert not any("cosign sign " in line for line in described)


def test_a_wrong_key_or_password_stops_the_release_before_anything(
    tmp_path: Path, key_pair, monkeypatch
) -> None:
    work, _ = make_repo(tmp_path / "repo")
    private, public = key_pair
    monkeypatch.setenv("COSIGN_PASSWORD", "not the password")
    with pytest.raises(AgentImageError, match="cosign cannot open the signing key"):
        plan(work, signing_key=str(private))
    monkeypatch.setenv("COSIGN_PASSWORD", "pw")
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["cosign", "generate-key-pair"], cwd=other, check=True, capture_output=True,
                   env={**os.environ, "COSIGN_PASSWORD": "x"})  # fmt: skip
    with pytest.raises(AgentImageError, match="is not the one whose public half is"):
        plan(work, signing_key=str(private), public_key=str(other / "cosign.pub"))
    assert plan(work, signing_key=str(private), public_key=str(public)).public_key


def test_an_image_that_verifies_is_not_signed_again(tmp_path: Path) -> None:
    work, git = make_repo(tmp_path / "repo")
    fake = pushed(work, git)
    done = plan(work, fake)
    assert done.supply_done
    fake.verified = False
    again = plan(work, fake)
    assert not again.supply_done
    skipped = {
        line.split(".")[1].split("[")[0].strip()
        for line in release.describe(done, settings(), work)
        if "[skip: already SBOM attached and verified" in line
    }
    assert skipped == {"SBOM per platform", "vulnerability scan", "attach the SBOM (unsigned)"}


def test_a_failed_verification_records_nothing_and_tags_nothing(tmp_path: Path) -> None:
    """The verify step runs before git and the tags: when it fails, the release stops there."""
    work, git = make_repo(tmp_path / "repo")
    fake = pushed(work, git)
    result = releaseplan.ReleasePlan(**{**plan(work, fake).__dict__, "supply_done": True})
    fake.verified = False
    head = git("rev-parse", "HEAD")
    with pytest.raises(AgentImageError, match="carries no SBOM") as err:
        release.execute(result, settings(), work, registry=fake)  # type: ignore[arg-type]
    assert err.value.code == ExitCode.SUPPLY_CHAIN
    assert git("rev-parse", "HEAD") == head
    assert git("tag", "--list") == ""
    assert fake.copied == []


def test_a_release_without_cosign_is_refused_naming_the_install(
    tmp_path: Path, monkeypatch
) -> None:
    from agentimage import preflight

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AgentImageError, match="cosign is not installed") as err:
        preflight.cosign()
    assert err.value.code == ExitCode.ENVIRONMENT
    assert "provision-release-tools.sh" in err.value.message
