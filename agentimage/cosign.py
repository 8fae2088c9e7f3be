"""Signing with cosign: the command lines, the signing key's checks, and reading back what
`cosign verify` and `cosign verify-attestation` print.

Key-based and offline: signatures and attestations are stored in the image's own repository
(cosign's `sha256-<digest>.sig` / `.att` / `.sbom` tags), nothing is uploaded to a public
transparency log (`--tlog-upload=false`), and verification with the public key skips it
(`--insecure-ignore-tlog=true`). Whoever holds the public key can verify a release with
cosign alone; README "Verifying a release" shows how.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agentimage import proc
from agentimage.errors import AgentImageError, ExitCode

COSIGN = "cosign"
SBOM_TYPE = "cyclonedx"  # cosign's name for the https://cyclonedx.org/bom predicate
SBOM_PREDICATE = "https://cyclonedx.org/bom"
VERSION_ANNOTATION = "org.opencontainers.image.version"
REVISION_ANNOTATION = "org.opencontainers.image.revision"
# key references cosign resolves itself (KMS, Vault, Kubernetes secrets)
_KEY_SCHEMES = ("awskms://", "gcpkms://", "azurekms://", "hashivault://", "k8s://", "pkcs11:")


def check_key(reference: str, environ: Mapping[str, str] | None = None) -> str:
    """A signing key reference cosign can open: a key file, env://VAR, or a KMS URI.
    The key's password is cosign's to read (COSIGN_PASSWORD)."""
    environ = os.environ if environ is None else environ
    if reference.startswith("env://"):
        name = reference.removeprefix("env://")
        if not environ.get(name):
            raise AgentImageError(
                f"signing key {reference} names the environment variable {name}, which is not "
                "set; export the private key (cosign.key's contents) in it",
            )
        return reference
    if reference.startswith(_KEY_SCHEMES):
        return reference
    path = Path(reference).expanduser()
    if not path.is_file():
        raise AgentImageError(
            f"signing key {reference} is not a file; pass the cosign.key written by cosign "
            "generate-key-pair, env://VAR or a KMS URI (release.signing_key)",
        )
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:200]
    except OSError as exc:
        raise AgentImageError(
            f"signing key {reference} is not readable ({exc.strerror}); fix its permissions"
        ) from exc
    if "PRIVATE KEY" not in head:
        raise AgentImageError(
            f"signing key {reference} holds no private key; pass the cosign.key (not cosign.pub)"
        )
    return str(path.resolve())


def check_public_key(reference: str) -> Path:
    path = Path(reference).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentImageError(
            f"public key {reference} cannot be read ({exc.strerror or exc}); pass the "
            "cosign.pub of the release key with --key (or release.public_key)",
        ) from exc
    if "PUBLIC KEY" not in text:
        raise AgentImageError(
            f"public key {reference} holds no public key; pass the cosign.pub of the release key"
        )
    return path.resolve()


def same_key(one: str, other: str) -> bool:
    """Two PEM public keys are the same key (whitespace aside)."""
    return "".join(one.split()) == "".join(other.split())


def _annotations(values: Mapping[str, str]) -> list[str]:
    argv = []
    for name, value in values.items():
        argv += ["-a", f"{name}={value}"]
    return argv


def public_key_argv(key: str) -> list[str]:
    return [COSIGN, "public-key", "--key", key]


def sign_argv(ref: str, key: str, annotations: Mapping[str, str]) -> list[str]:
    return [COSIGN, "sign", "--key", key, "--tlog-upload=false", "--yes",
            *_annotations(annotations), ref]  # fmt: skip


def attest_argv(ref: str, key: str, predicate: Path, *, replace: bool) -> list[str]:
    """An SBOM attestation: the in-toto statement of the document, signed with the key.
    replace=True keeps one SBOM on an image (a platform image); False adds one more (the
    index carries each platform's)."""
    flags = ["--replace"] if replace else []
    return [COSIGN, "attest", "--key", key, "--type", SBOM_TYPE, "--predicate", str(predicate),
            *flags, "--tlog-upload=false", "--yes", ref]  # fmt: skip


def attach_sbom_argv(ref: str, document: Path) -> list[str]:
    """An unsigned release: the SBOM attached as it is (cosign's .sbom tag)."""
    return [COSIGN, "attach", "sbom", "--sbom", str(document), "--type", SBOM_TYPE, ref]


def verify_argv(ref: str, public_key: Path, annotations: Mapping[str, str]) -> list[str]:
    return [COSIGN, "verify", "--key", str(public_key), "--insecure-ignore-tlog=true",
            *_annotations(annotations), ref]  # fmt: skip


def verify_attestation_argv(ref: str, public_key: Path) -> list[str]:
    return [COSIGN, "verify-attestation", "--key", str(public_key), "--type", SBOM_TYPE,
            "--insecure-ignore-tlog=true", ref]  # fmt: skip


def download_sbom_argv(ref: str) -> list[str]:
    return [COSIGN, "download", "sbom", ref]


@dataclass(frozen=True)
class Statement:
    """One verified in-toto statement: which digests it is about, and its predicate."""

    subjects: tuple[str, ...]  # sha256:... digests
    predicate_type: str
    predicate: dict[str, object]


def parse_attestations(stdout: str) -> list[Statement]:
    """`cosign verify-attestation` prints one DSSE envelope per line; each payload is a
    base64 in-toto statement."""
    found = []
    for line in stdout.splitlines():
        if not line.strip().startswith("{"):
            continue
        envelope = json.loads(line)
        statement = json.loads(base64.b64decode(envelope["payload"]))
        subjects = tuple(
            f"sha256:{s['digest']['sha256']}"
            for s in statement.get("subject") or []
            if "sha256" in (s.get("digest") or {})
        )
        predicate = statement.get("predicate")
        found.append(
            Statement(
                subjects,
                str(statement.get("predicateType", "")),
                predicate if isinstance(predicate, dict) else {},
            )
        )
    return found


def signed_digests(stdout: str) -> list[str]:
    """`cosign verify` prints a JSON list of the verified signatures' payloads."""
    digests = []
    for line in stdout.splitlines():
        if line.strip().startswith("["):
            for payload in json.loads(line):
                image = (payload.get("critical") or {}).get("image") or {}
                digests.append(str(image.get("docker-manifest-digest", "")))
    return digests


def failure_detail(stderr_line: str) -> str:
    """cosign's last stderr line, without its 'Error: ' prefix."""
    return stderr_line.removeprefix("Error: ").strip()


def tool_missing() -> AgentImageError:
    return AgentImageError(
        "cosign is not installed; a release attaches its SBOM (and signs) with cosign: "
        "apt-get install cosign/trixie (scripts/provision-release-tools.sh)",
        ExitCode.ENVIRONMENT,
    )


def open_signing_key(signing_key: str, public_key: str) -> tuple[str, str]:
    """(key reference, its public key PEM), or ("", "") without a key. cosign opens the key
    here (its password from COSIGN_PASSWORD), so a wrong key or password stops the release
    before anything is built; a key that is not `public_key`'s private half is refused."""
    if not signing_key:
        return "", ""
    key = check_key(signing_key)
    try:
        opened = proc.run(public_key_argv(key), timeout=60)
    except proc.CommandNotFound:
        raise tool_missing() from None
    if not opened.ok:
        raise AgentImageError(
            f"cosign cannot open the signing key {signing_key} ({opened.detail}); "
            "set COSIGN_PASSWORD to its password, or pass the right key",
        )
    pem = opened.stdout
    if public_key:
        expected = check_public_key(public_key).read_text(encoding="utf-8")
        if not same_key(pem, expected):
            raise AgentImageError(
                f"the signing key {signing_key} is not the one whose public half is "
                f"{public_key} (release.public_key); sign with the release key or "
                "publish its cosign.pub",
            )
    return key, pem
