"""What an image's layers carry: sizes per Dockerfile step, duplicates and shadowed bytes.

Reads the archive `docker image save` writes. With the containerd image store that is an OCI
layout (index.json -> image index -> per-platform manifest -> config + layers, the layers
usually gzip-compressed); the classic Docker format (manifest.json) is read as a fallback.

Layers are replayed in order the way overlayfs stacks them: a `.wh.NAME` entry deletes NAME
from the layers below, `.wh..wh..opq` hides everything below in its directory, and an entry
replaces whatever the lower layers had at its path. Each regular file is an *inode*: one
tar entry plus the hard links to it in the same layer, so hard links count once. Bytes are
*shadowed* when every name of an inode has been overwritten or deleted by a later layer:
the image still ships them, nobody can see them.

Everything here is a pure function of the archive except `save_image`, the thin wrapper
around `docker image save`. Its users are the benchmark's size figures and the image tests'
size budget (tests/image/test_size_budget.py); the release tooling never reads an archive.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import posixpath
import tarfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Any

from agentimage import proc

MIB = 1024 * 1024
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
ATTESTATION = "attestation-manifest"
_INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
_CHUNK = 1024 * 1024


class ArchiveError(ValueError):
    """The archive cannot be read as an image; the message says why and what to do."""


class Kind(Enum):
    FILE = "file"
    HARDLINK = "hardlink"
    DIR = "dir"
    SYMLINK = "symlink"
    WHITEOUT = "whiteout"  # path is the deleted path, not the .wh. marker
    OPAQUE = "opaque"  # path is the directory whose lower contents are hidden
    OTHER = "other"  # devices, fifos


@dataclass(frozen=True)
class Entry:
    """One tar member of a layer, normalised to an absolute path."""

    path: str
    kind: Kind
    size: int = 0  # content bytes for FILE; 0 for everything else (a hard link adds none)
    digest: str | None = None  # sha256 of the content, FILE entries only (see hash_min_size)
    link: str = ""  # symlink target as stored, or the absolute path a hard link points to
    mode: int = 0


@dataclass(frozen=True)
class Layer:
    index: int
    digest: str  # the blob digest as stored (compressed)
    step: str  # the Dockerfile step from the config history ("" when unknown)
    entries: tuple[Entry, ...]
    compressed_size: int = 0  # the blob as stored and pulled

    @property
    def size(self) -> int:
        """Uncompressed content bytes: regular files, each hard-linked inode once."""
        return sum(entry.size for entry in self.entries if entry.kind is Kind.FILE)

    @property
    def files(self) -> int:
        return sum(1 for entry in self.entries if entry.kind is Kind.FILE)


@dataclass(frozen=True)
class Image:
    config: Mapping[str, Any]
    layers: tuple[Layer, ...]

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def compressed_size(self) -> int:
        return sum(layer.compressed_size for layer in self.layers)


@dataclass(frozen=True)
class Node:
    """A path of the final (or an intermediate) filesystem."""

    path: str
    layer: int
    entry: Entry
    inode: tuple[int, str] | None  # (layer, first path) of a regular file; None otherwise

    @property
    def kind(self) -> Kind:
        return Kind.FILE if self.inode is not None else self.entry.kind


@dataclass(frozen=True)
class Inode:
    key: tuple[int, str]
    size: int
    digest: str | None


@dataclass(frozen=True)
class Shadowed:
    """A regular file whose last visible name a later layer overwrote or deleted."""

    path: str
    layer: int
    size: int
    by_layer: int
    how: str  # "overwritten" | "deleted"


@dataclass(frozen=True)
class Duplicate:
    """Two or more distinct inodes in the final filesystem with the same content."""

    digest: str
    size: int
    paths: tuple[tuple[str, ...], ...]  # one tuple of names per inode

    @property
    def wasted(self) -> int:
        return self.size * (len(self.paths) - 1)


@dataclass
class Replay:
    """The result of stacking the layers: final filesystem plus what got hidden on the way."""

    files: dict[str, Node]
    inodes: dict[tuple[int, str], Inode]
    shadowed: list[Shadowed] = field(default_factory=list)

    def names(self, key: tuple[int, str]) -> tuple[str, ...]:
        return tuple(sorted(p for p, n in self.files.items() if n.inode == key))


# --------------------------------------------------------------------------------------------
# Reading archives


def normalise(name: str) -> str:
    """Tar member name -> absolute POSIX path ("./usr/bin/" -> "/usr/bin")."""
    while name.startswith("./"):
        name = name[2:]
    path = posixpath.normpath("/" + name)
    return "/" if path == "//" else path


def read_layer(
    fileobj: IO[bytes],
    *,
    index: int = 0,
    digest: str = "",
    step: str = "",
    hash_min_size: int = 0,
) -> Layer:
    """Parse one layer tar (plain or gzip, detected by its magic bytes) from a stream."""
    entries: list[Entry] = []
    with _open_stream(fileobj) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            entries.append(_entry(tar, member, hash_min_size))
    return Layer(index=index, digest=digest, step=step, entries=tuple(entries))


def _with_stored_size(layer: Layer, size: int) -> Layer:
    return Layer(layer.index, layer.digest, layer.step, layer.entries, compressed_size=size)


def read_archive(path: Path, *, platform: str = "linux/amd64", hash_min_size: int = 0) -> Image:
    """Parse a `docker image save` archive; `platform` picks the manifest of a multi-arch one.

    hash_min_size: files smaller than this get no content digest (hashing every small file
    of a large image costs time and the duplicate check only looks at big ones).
    """
    with tarfile.open(path, mode="r:") as outer:
        members = {normalise(m.name): m for m in outer.getmembers()}

        def blob(name: str) -> IO[bytes]:
            member = members.get(normalise(name))
            handle = outer.extractfile(member) if member is not None else None
            if handle is None:
                raise ArchiveError(
                    f"{path}: {name} is missing; save the image again with `docker image save`"
                )
            return handle

        def blob_json(name: str) -> Any:
            return json.load(blob(name))

        if "/index.json" in members:
            manifest = _pick_manifest(blob_json, blob_json("index.json"), platform, members)
            config = blob_json(_blob_path(manifest["config"]["digest"]))
            layer_paths = [_blob_path(desc["digest"]) for desc in manifest["layers"]]
        elif "/manifest.json" in members:
            entry = blob_json("manifest.json")[0]
            config = blob_json(entry["Config"])
            layer_paths = list(entry["Layers"])
        else:
            raise ArchiveError(f"{path} is not an image archive (no index.json or manifest.json)")
        steps = layer_steps(config)
        layers = tuple(
            _with_stored_size(
                read_layer(
                    blob(name),
                    index=i,
                    digest=posixpath.basename(name),
                    step=steps[i] if i < len(steps) else "",
                    hash_min_size=hash_min_size,
                ),
                members[normalise(name)].size,
            )
            for i, name in enumerate(layer_paths)
        )
    return Image(config=config, layers=layers)


def save_image(ref: str, dest: Path, *, timeout: float = 600) -> Path:
    """`docker image save REF -o DEST` (the only side effect in this module)."""
    proc.run(
        ["docker", "image", "save", "-o", str(dest), ref],
        timeout=timeout,
        failure=f"docker image save {ref} failed (is the image loaded?)",
    )
    return dest


def layer_steps(config: Mapping[str, Any]) -> list[str]:
    """The `created_by` of each history entry that made a layer, in layer order."""
    return [
        _short_step(item.get("created_by", ""))
        for item in config.get("history", [])
        if not item.get("empty_layer", False)
    ]


def _short_step(created_by: str) -> str:
    step = created_by.removesuffix(" # buildkit").strip()
    for shell in ("/bin/sh -eux -c ", "/bin/sh -c ", "|"):
        if shell in step and step.startswith("RUN "):
            step = "RUN " + step.split(shell, 1)[1].strip()
            break
    return " ".join(step.split())


def _blob_path(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    return f"blobs/{algorithm}/{value}"


def _pick_manifest(
    load: Callable[[str], Any],
    index: Mapping[str, Any],
    platform: str,
    members: Mapping[str, tarfile.TarInfo],
) -> Mapping[str, Any]:
    """Walk index -> (nested indexes) -> the image manifest for `platform`."""
    want_os, _, want_arch = platform.partition("/")
    candidates: list[Mapping[str, Any]] = []

    def walk(desc_list: Iterable[Mapping[str, Any]]) -> None:
        for desc in desc_list:
            annotations = desc.get("annotations") or {}
            if annotations.get("vnd.docker.reference.type") == ATTESTATION:
                continue
            path = _blob_path(desc["digest"])
            if "/" + path not in members:
                continue  # a platform that was not saved with the image
            doc = load(path)
            if desc.get("mediaType") in _INDEX_TYPES or "manifests" in doc:
                walk(doc.get("manifests", []))
            else:
                candidates.append({**doc, "_platform": desc.get("platform") or {}})

    walk(index.get("manifests", []))
    if not candidates:
        raise ArchiveError("the archive holds no image manifest")
    for doc in candidates:
        plat = doc["_platform"]
        if plat.get("os", want_os) == want_os and plat.get("architecture", want_arch) == want_arch:
            return doc
    return candidates[0]


@contextmanager
def _open_stream(fileobj: IO[bytes]) -> Iterator[IO[bytes]]:
    """The layer stream, decompressed when its first bytes say gzip."""
    head = _peek(fileobj, 4)
    if head == b"\x28\xb5\x2f\xfd":
        raise ArchiveError("zstd-compressed layers are not supported; build with the default gzip")
    if head[:2] != b"\x1f\x8b":
        yield fileobj
        return
    with gzip.GzipFile(fileobj=fileobj, mode="rb") as stream:
        yield stream


def _peek(fileobj: IO[bytes], size: int) -> bytes:
    position = fileobj.tell()
    head = fileobj.read(size)
    fileobj.seek(position)
    return head


def _entry(tar: tarfile.TarFile, member: tarfile.TarInfo, hash_min_size: int) -> Entry:
    path = normalise(member.name)
    base = posixpath.basename(path)
    parent = posixpath.dirname(path)
    if base == OPAQUE_MARKER:
        return Entry(parent, Kind.OPAQUE)
    if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
        return Entry(path, Kind.OTHER)  # aufs bookkeeping (.wh..wh.plnk etc.): no effect
    if base.startswith(WHITEOUT_PREFIX):
        return Entry(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]), Kind.WHITEOUT)
    if member.isdir():
        return Entry(path, Kind.DIR, mode=member.mode)
    if member.issym():
        return Entry(path, Kind.SYMLINK, link=member.linkname, mode=member.mode)
    if member.islnk():
        return Entry(path, Kind.HARDLINK, link=normalise(member.linkname), mode=member.mode)
    if member.isreg():
        digest = None
        if member.size >= hash_min_size:
            digest = _sha256(tar.extractfile(member))
        return Entry(path, Kind.FILE, size=member.size, digest=digest, mode=member.mode)
    return Entry(path, Kind.OTHER, mode=member.mode)


def _sha256(handle: IO[bytes] | None) -> str:
    sha = hashlib.sha256()
    if handle is not None:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest()


# --------------------------------------------------------------------------------------------
# Analysis


def replay(layers: Iterable[Layer]) -> Replay:
    """Stack the layers like overlayfs and record every inode that ends up invisible."""
    files: dict[str, Node] = {}
    inodes: dict[tuple[int, str], Inode] = {}
    live: dict[tuple[int, str], int] = defaultdict(int)  # inode -> visible names
    result = Replay(files=files, inodes=inodes)

    def remove(path: str, layer: int, how: str) -> None:
        node = files.pop(path, None)
        if node is None or node.inode is None:
            return
        live[node.inode] -= 1
        if live[node.inode] == 0:
            inode = inodes[node.inode]
            result.shadowed.append(Shadowed(path, node.layer, inode.size, layer, how))

    def remove_below(directory: str, layer: int, how: str) -> None:
        prefix = directory.rstrip("/") + "/"
        for path in [p for p in files if p.startswith(prefix)]:
            remove(path, layer, how)

    for layer in layers:
        # Whiteouts and opaque markers act on the layers below only, wherever they sit in
        # this layer's tar, so apply them before adding this layer's own entries.
        for entry in layer.entries:
            if entry.kind is Kind.WHITEOUT:
                remove_below(entry.path, layer.index, "deleted")
                remove(entry.path, layer.index, "deleted")
            elif entry.kind is Kind.OPAQUE:
                remove_below(entry.path, layer.index, "deleted")
        local: dict[str, tuple[int, str]] = {}  # path -> inode, for this layer's hard links
        for entry in layer.entries:
            if entry.kind in (Kind.WHITEOUT, Kind.OPAQUE):
                continue
            old = files.get(entry.path)
            if old is not None:
                if old.kind is Kind.DIR and entry.kind is Kind.DIR:
                    files[entry.path] = Node(entry.path, layer.index, entry, None)
                    continue  # metadata only; the directory's contents stay
                if old.kind is Kind.DIR:
                    remove_below(entry.path, layer.index, "overwritten")
                remove(entry.path, layer.index, "overwritten")
            key: tuple[int, str] | None = None
            if entry.kind is Kind.FILE:
                key = (layer.index, entry.path)
                inodes[key] = Inode(key, entry.size, entry.digest)
            elif entry.kind is Kind.HARDLINK:
                key = local.get(entry.link)
                if key is None and entry.link in files:
                    key = files[entry.link].inode  # not produced by overlay diffs; be lenient
            if key is not None:
                local[entry.path] = key
                live[key] += 1
            files[entry.path] = Node(entry.path, layer.index, entry, key)
    return result


def duplicates(state: Replay, *, min_size: int = MIB) -> list[Duplicate]:
    """Distinct visible inodes of at least min_size bytes that share their content."""
    by_digest: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for node in state.files.values():
        if node.inode is None:
            continue
        inode = state.inodes[node.inode]
        if inode.size >= min_size and inode.digest is not None:
            by_digest[inode.digest].add(inode.key)
    found = [
        Duplicate(
            digest,
            state.inodes[next(iter(keys))].size,
            tuple(sorted(state.names(key) for key in keys)),
        )
        for digest, keys in by_digest.items()
        if len(keys) > 1
    ]
    return sorted(found, key=lambda dup: -dup.wasted)


def carried(layers: Iterable[Layer], digest: str) -> int:
    """How many inodes across all layers (visible or not) hold content `digest`."""
    return sum(
        1
        for layer in layers
        for entry in layer.entries
        if entry.kind is Kind.FILE and entry.digest == digest
    )


def shadowed_total(state: Replay, *, by_layers_from: int = 0) -> int:
    """Bytes hidden by layers from index `by_layers_from` on (0: by any layer).

    Pass the base image's layer count to charge an image only for what its own layers hide.
    """
    return sum(item.size for item in state.shadowed if item.by_layer >= by_layers_from)


def shadowed_by_path(state: Replay, *, top: int = 0, by_layers_from: int = 0) -> list[Shadowed]:
    """The shadowed files, largest first (all of them, or the `top` largest)."""
    hidden = [item for item in state.shadowed if item.by_layer >= by_layers_from]
    ordered = sorted(hidden, key=lambda item: (-item.size, item.path))
    return ordered[:top] if top else ordered


def resolve(files: Mapping[str, Node], path: str, *, max_links: int = 40) -> Node | None:
    """Follow symlinks (in every component) through a replayed filesystem."""
    parts = [p for p in normalise(path).split("/") if p]
    current = "/"
    hops = 0
    while parts:
        current = posixpath.join(current, parts.pop(0))
        node = files.get(current)
        if node is None:
            if parts:
                continue  # a parent directory no layer lists explicitly
            return None
        if node.entry.kind is Kind.SYMLINK:
            hops += 1
            if hops > max_links:
                return None
            target = node.entry.link
            base = "/" if target.startswith("/") else posixpath.dirname(current)
            parts = [p for p in normalise(posixpath.join(base, target)).split("/") if p] + parts
            current = "/"
    return files.get(current) if current != "/" else None


def shared_prefix(base_diff_ids: Sequence[str], diff_ids: Sequence[str]) -> int:
    """How many of an image's layers (rootfs diff_ids) are its base image's layers."""
    count = 0
    for ours, theirs in zip(diff_ids, base_diff_ids, strict=False):
        if ours != theirs:
            break
        count += 1
    return count if count == len(base_diff_ids) else 0


def breakdown(
    image: Image, state: Replay, classify: Callable[[Node, int], str | None]
) -> dict[str, int]:
    """Bytes per category of every inode the image carries (visible or shadowed).

    classify(node, layer_index) names the category of a visible file (None: "other");
    shadowed bytes are reported under "shadowed" whatever they were.
    """
    totals: dict[str, int] = defaultdict(int)
    seen: set[tuple[int, str]] = set()
    for node in state.files.values():
        if node.inode is None or node.inode in seen:
            continue
        seen.add(node.inode)
        totals[classify(node, node.layer) or "other"] += state.inodes[node.inode].size
    hidden = shadowed_total(state)
    if hidden:
        totals["shadowed"] += hidden
    return dict(totals)


def find_bytes(
    path: Path, needles: Sequence[bytes], *, platform: str = "linux/amd64"
) -> list[tuple[int, str, bytes]]:
    """Every (layer, path, needle) where a regular file of the image in archive `path`
    contains one of the needles: the whole content of every layer, hidden files included."""
    overlap = max(len(needle) for needle in needles) - 1
    found: list[tuple[int, str, bytes]] = []
    with tarfile.open(path, mode="r:") as outer:
        members = {normalise(m.name): m for m in outer.getmembers()}

        def load(name: str) -> Any:
            handle = outer.extractfile(members[normalise(name)])
            assert handle is not None
            return json.load(handle)

        manifest = _pick_manifest(load, load("index.json"), platform, members)
        for index, desc in enumerate(manifest["layers"]):
            blob = outer.extractfile(members[normalise(_blob_path(desc["digest"]))])
            assert blob is not None
            with _open_stream(blob) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    content = tar.extractfile(member) if member.isreg() else None
                    seen: set[bytes] = set()
                    tail = b""
                    while content is not None and (chunk := content.read(_CHUNK)):
                        window = tail + chunk
                        seen.update(needle for needle in needles if needle in window)
                        tail = window[-overlap:] if overlap else b""
                    found += [(index, normalise(member.name), needle) for needle in sorted(seen)]
    return found
