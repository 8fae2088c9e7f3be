"""The SBOM of a released image: CycloneDX 1.6 JSON, one document per platform.

Why not syft: the Go module proxy it is built from is not reachable from these hosts, and
BuildKit's SBOM attestation needs a scanner image no registry here can serve. The image's own
package databases already say what is inside, so the document is made from them with
cyclonedx-python-lib (OWASP's maintained library, which also validates it against the
CycloneDX schema): dpkg's status (slim) or apk's installed database (alpine), the
package.json of every npm package under Node's global prefix (npm, corepack) and of the
Claude Code CLI, and the base image's own NODE_VERSION / YARN_VERSION declarations. The files
are copied out of the pushed image of each platform (`docker create` + `docker cp`: nothing
runs, so no emulation), see supplychain.extract_commands.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

try:  # cyclonedx-python-lib 11 moved it; the old location warns
    from cyclonedx.contrib.license.factories import LicenseFactory
except ImportError:  # pragma: no cover (10.x)
    from cyclonedx.factory.license import LicenseFactory  # type: ignore[no-redef]
from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

from agentimage.errors import AgentImageError, ExitCode

CLI_PACKAGE = "@anthropic-ai/claude-code"
CLI_PACKAGE_JSON = "/opt/claude-code/lib/node_modules/@anthropic-ai/claude-code/package.json"
NODE_MODULES = "/usr/local/lib/node_modules"
OS_RELEASE = "/etc/os-release"
PACKAGE_DATABASES = {"slim": "/var/lib/dpkg/status", "alpine": "/lib/apk/db/installed"}
PLATFORM_PROPERTY = "agentgate:image:platform"
TOOL = "agentgate-agent-image"

# Where each source lands in the platform's directory (supplychain copies them there).
COPIED = {
    "os-release": OS_RELEASE,
    "packages": "",  # the variant's database, PACKAGE_DATABASES
    "node_modules": NODE_MODULES,
    "claude-code.package.json": CLI_PACKAGE_JSON,
}


@dataclass(frozen=True)
class Package:
    name: str  # npm: with its @scope
    version: str
    purl: str
    kind: ComponentType = ComponentType.LIBRARY
    license: str = ""
    cpe: str = ""


@dataclass(frozen=True)
class Subject:
    """The image a document describes."""

    repository: str  # registry/agentgate/agent
    digest: str  # the platform image's manifest digest
    platform: str  # linux/amd64
    version: str  # the release, X.Y.Z
    created: str  # RFC 3339: the image's created label (the document's timestamp)


def parse_os_release(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            values[key.strip()] = value.strip().strip("\"'")
    return values


def _stanzas(text: str) -> Iterable[dict[str, str]]:
    """dpkg status stanzas: 'Field: value' lines (continuations dropped), blank-separated."""
    fields: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if fields:
                yield fields
            fields = {}
        elif not line[0].isspace():
            name, _, value = line.partition(":")
            fields[name] = value.strip()


def parse_dpkg_status(text: str, distro: str) -> list[Package]:
    """Installed packages of a Debian dpkg status file, as pkg:deb purls."""
    found = []
    for fields in _stanzas(text):
        if fields.get("Status", "").split()[-1:] != ["installed"]:
            continue
        name, version = fields.get("Package", ""), fields.get("Version", "")
        if not name or not version:
            continue
        qualifiers = {"arch": fields.get("Architecture", ""), "distro": distro}
        source = fields.get("Source", "").split(" ")[0]
        if source and source != name:
            qualifiers["upstream"] = source
        purl = PackageURL(
            "deb", "debian", name, version, {k: v for k, v in qualifiers.items() if v}
        )
        found.append(Package(name, version, str(purl)))
    return found


def parse_apk_installed(text: str, distro: str) -> list[Package]:
    """Installed packages of Alpine's /lib/apk/db/installed, as pkg:apk purls."""
    found = []
    for block in text.split("\n\n"):
        fields = {
            line[0]: line[2:] for line in block.splitlines() if len(line) > 1 and line[1] == ":"
        }
        name, version = fields.get("P", ""), fields.get("V", "")
        if not name or not version:
            continue
        qualifiers = {"arch": fields.get("A", ""), "distro": distro}
        if fields.get("o") and fields["o"] != name:
            qualifiers["upstream"] = fields["o"]
        purl = PackageURL(
            "apk", "alpine", name, version, {k: v for k, v in qualifiers.items() if v}
        )
        found.append(Package(name, version, str(purl), license=fields.get("L", "")))
    return found


def npm_purl(name: str, version: str) -> str:
    scope, _, bare = name.rpartition("/")
    return str(PackageURL("npm", scope or None, bare, version))


def npm_package(path: Path, kind: ComponentType = ComponentType.LIBRARY) -> Package | None:
    """A package.json as a component; None for a file that names no package."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name, version = data.get("name"), data.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    license = data.get("license")
    return Package(
        name, version, npm_purl(name, version), kind, license if isinstance(license, str) else ""
    )


def npm_packages(node_modules: Path) -> list[Package]:
    """Every package installed under a node_modules tree (nested ones included): each
    node_modules/NAME/package.json or node_modules/@SCOPE/NAME/package.json."""
    found = []
    for manifest in sorted(node_modules.rglob("package.json")):
        parent = manifest.parent
        scoped = parent.parent.name.startswith("@")
        if (parent.parent.parent if scoped else parent.parent).name != "node_modules":
            continue  # a package.json inside a package (tests, lib/...): not an install
        package = npm_package(manifest)
        if package is not None:
            found.append(package)
    return found


def node_runtime(version: str) -> Package:
    """Node.js as scanners know it: its CPE is how vulnerability databases list it."""
    return Package(
        "node",
        version,
        str(PackageURL("generic", None, "node", version, {"download_url": "https://nodejs.org"})),
        ComponentType.PLATFORM,
        "MIT",
        f"cpe:2.3:a:nodejs:node.js:{version}:*:*:*:*:*:*:*",
    )


@dataclass(frozen=True)
class Contents:
    """What one platform's image holds, read from the files copied out of it."""

    os_id: str
    os_version: str
    os_packages: tuple[Package, ...]
    node: Package
    npm: tuple[Package, ...]  # npm, corepack, yarn and what they bundle
    cli: Package


def read_contents(directory: Path, variant: str, env: Mapping[str, str]) -> Contents:
    """The copied files of one platform (COPIED names) and the image's environment."""
    os_release = parse_os_release((directory / "os-release").read_text(encoding="utf-8"))
    os_id, os_version = os_release.get("ID", "unknown"), os_release.get("VERSION_ID", "")
    distro = f"{os_id}-{os_version}" if os_version else os_id
    database = (directory / "packages").read_text(encoding="utf-8", errors="replace")
    parse = parse_apk_installed if variant == "alpine" else parse_dpkg_status
    if "NODE_VERSION" not in env:
        raise AgentImageError(
            "the image declares no NODE_VERSION, so the SBOM cannot name Node.js's version; "
            "build from an official node:* base (or one that sets NODE_VERSION)",
            ExitCode.SUPPLY_CHAIN,
        )
    npm = npm_packages(directory / "node_modules")
    if env.get("YARN_VERSION"):
        yarn = env["YARN_VERSION"]
        npm.append(Package("yarn", yarn, npm_purl("yarn", yarn), ComponentType.APPLICATION))
    cli = npm_package(directory / "claude-code.package.json", ComponentType.APPLICATION)
    if cli is None or cli.name != CLI_PACKAGE:
        raise AgentImageError(
            f"the image holds no readable {CLI_PACKAGE} package.json at {CLI_PACKAGE_JSON}; "
            "the SBOM cannot name the CLI: check the Dockerfile's CLI install",
            ExitCode.SUPPLY_CHAIN,
        )
    return Contents(
        os_id,
        os_version,
        tuple(parse(database, distro)),
        node_runtime(env["NODE_VERSION"]),
        tuple(npm),
        cli,
    )


def _component(package: Package) -> Component:
    scope, _, bare = package.name.rpartition("/")
    licenses = [LicenseFactory().make_from_string(package.license)] if package.license else []
    return Component(
        type=package.kind,
        group=scope or None,
        name=bare,
        version=package.version,
        purl=PackageURL.from_string(package.purl),
        bom_ref=package.purl,
        cpe=package.cpe or None,
        licenses=licenses,
    )


def document(contents: Contents, subject: Subject, tool_version: str) -> str:
    """The CycloneDX 1.6 JSON of one platform's image, validated against the schema.

    Deterministic for one image: the serial number derives from its digest, the timestamp is
    its created label, components are sorted; re-running a release re-attaches the same bytes.
    """
    arch = subject.platform.split("/")[1]
    name = subject.repository.rsplit("/", 1)[-1]
    image = Component(
        type=ComponentType.CONTAINER,
        name=subject.repository,
        version=f"v{subject.version}",
        purl=PackageURL(
            "oci",
            None,
            name,
            subject.digest,
            {"repository_url": subject.repository, "arch": arch, "tag": f"v{subject.version}"},
        ),
        bom_ref=f"image:{subject.digest}",
        properties=[Property(name=PLATFORM_PROPERTY, value=subject.platform)],
    )
    operating_system = Component(
        type=ComponentType.OPERATING_SYSTEM,
        name=contents.os_id,
        version=contents.os_version,
        bom_ref=f"os:{contents.os_id}-{contents.os_version}",
    )
    unique = {
        p.purl: p for p in (*contents.os_packages, contents.node, *contents.npm, contents.cli)
    }
    components = [_component(unique[purl]) for purl in sorted(unique)]
    bom = Bom(
        serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"{subject.repository}@{subject.digest}")
    )
    bom.metadata.timestamp = datetime.fromisoformat(subject.created.replace("Z", "+00:00"))
    bom.metadata.component = image
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name=TOOL, version=tool_version)
    )
    bom.components.add(operating_system)
    for component in components:
        bom.components.add(component)
    bom.register_dependency(image, [operating_system, *components])
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    # Imported here: the schema validator loads jsonschema (about a second), which every other
    # command of the tooling (invoke build, --help) would otherwise pay for at start-up.
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise AgentImageError(
            f"the SBOM for {subject.platform} is not valid CycloneDX 1.6 ({error}); report it",
            ExitCode.SUPPLY_CHAIN,
        )
    return text + "\n"


@dataclass(frozen=True)
class Summary:
    """What a released SBOM says, as verification reads it back."""

    platform: str
    cli_version: str
    node_version: str
    os_packages: int
    components: int


def summarize(text: str) -> Summary:
    """Read a CycloneDX JSON document (ours) back: platform, CLI and Node versions."""
    data = json.loads(text)
    subject = (data.get("metadata") or {}).get("component") or {}
    platform = next(
        (
            p.get("value", "")
            for p in subject.get("properties") or []
            if p.get("name") == PLATFORM_PROPERTY
        ),
        "",
    )
    components = data.get("components") or []

    def version_of(group: str | None, name: str) -> str:
        return next(
            (
                c.get("version", "")
                for c in components
                if c.get("name") == name and c.get("group") == group
            ),
            "",
        )

    scope, _, bare = CLI_PACKAGE.rpartition("/")
    os_packages = [
        c for c in components if str(c.get("purl", "")).startswith(("pkg:deb/", "pkg:apk/"))
    ]
    return Summary(
        platform,
        version_of(scope, bare),
        version_of(None, "node"),
        len(os_packages),
        len(components),
    )
