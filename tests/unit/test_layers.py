"""benchmarks/layers.py on small synthetic layers and archives: no Docker needed."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import layers as L

# --------------------------------------------------------------------------------------------
# Building layers


@dataclass(frozen=True)
class F:
    """A regular file."""

    path: str
    data: bytes = b""


@dataclass(frozen=True)
class D:
    path: str


@dataclass(frozen=True)
class Sym:
    path: str
    target: str


@dataclass(frozen=True)
class Hard:
    path: str
    target: str


@dataclass(frozen=True)
class Wh:
    """Delete `path` from the layers below."""

    path: str


@dataclass(frozen=True)
class Opq:
    """Hide everything below `path` from the layers below."""

    path: str


Member = F | D | Sym | Hard | Wh | Opq


def layer_tar(members: Sequence[Member], *, compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            name = member.path.lstrip("/")
            if isinstance(member, Wh):
                head, _, tail = name.rpartition("/")
                name = f"{head}/.wh.{tail}" if head else f".wh.{tail}"
            elif isinstance(member, Opq):
                name = f"{name}/.wh..wh..opq"
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            payload = None
            if isinstance(member, F):
                info.size = len(member.data)
                payload = io.BytesIO(member.data)
            elif isinstance(member, D):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
            elif isinstance(member, Sym):
                info.type = tarfile.SYMTYPE
                info.linkname = member.target
            elif isinstance(member, Hard):
                info.type = tarfile.LNKTYPE
                info.linkname = member.target.lstrip("/")
            tar.addfile(info, payload)
    raw = buffer.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


def parse(members: Sequence[Member], index: int = 0, **kwargs: object) -> L.Layer:
    return L.read_layer(io.BytesIO(layer_tar(members)), index=index, **kwargs)  # type: ignore[arg-type]


def stack(*layers: Sequence[Member]) -> tuple[L.Layer, ...]:
    return tuple(parse(members, index=i) for i, members in enumerate(layers))


def shadowed(result: L.Replay) -> dict[str, int]:
    return {item.path: item.size for item in result.shadowed}


# --------------------------------------------------------------------------------------------
# Reading one layer


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_read_layer_classifies_members_plain_or_gzip(compress: bool) -> None:
    members: list[Member] = [
        D("/etc"),
        F("/etc/os-release", b"bookworm"),
        Sym("/etc/alias", "os-release"),
        Hard("/etc/copy", "/etc/os-release"),
        Wh("/etc/gone"),
        Opq("/var/cache"),
    ]
    layer = L.read_layer(io.BytesIO(layer_tar(members, compress=compress)), index=3)

    kinds = [(entry.path, entry.kind) for entry in layer.entries]
    assert kinds == [
        ("/etc", L.Kind.DIR),
        ("/etc/os-release", L.Kind.FILE),
        ("/etc/alias", L.Kind.SYMLINK),
        ("/etc/copy", L.Kind.HARDLINK),
        ("/etc/gone", L.Kind.WHITEOUT),
        ("/var/cache", L.Kind.OPAQUE),
    ]
    file = layer.entries[1]
    assert file.size == 8
    assert file.digest == "sha256:" + hashlib.sha256(b"bookworm").hexdigest()
    assert layer.entries[3].link == "/etc/os-release"
    assert layer.index == 3


def test_layer_size_counts_hard_links_once() -> None:
    layer = parse([F("/bin/a", b"x" * 100), Hard("/bin/b", "/bin/a"), F("/bin/c", b"yy")])
    assert layer.size == 102
    assert layer.files == 2


def test_hash_min_size_skips_small_files() -> None:
    layer = parse([F("/small", b"x"), F("/big", b"x" * 10)], hash_min_size=5)
    assert [entry.digest is None for entry in layer.entries] == [True, False]


@pytest.mark.parametrize(
    ("name", "path"),
    [("./usr/bin/", "/usr/bin"), ("usr//lib/./x", "/usr/lib/x"), ("./.wh.x", "/.wh.x")],
)
def test_normalise(name: str, path: str) -> None:
    assert L.normalise(name) == path


# --------------------------------------------------------------------------------------------
# Replaying layers


def test_overwritten_file_is_shadowed_with_its_earlier_size() -> None:
    result = L.replay(
        stack([F("/etc/passwd", b"a" * 50)], [F("/etc/passwd", b"b" * 60)]),
    )
    assert shadowed(result) == {"/etc/passwd": 50}
    assert result.shadowed[0].by_layer == 1
    assert result.shadowed[0].how == "overwritten"
    assert result.files["/etc/passwd"].layer == 1


def test_every_earlier_version_counts() -> None:
    result = L.replay(stack([F("/f", b"1" * 10)], [F("/f", b"2" * 20)], [F("/f", b"3" * 30)]))
    assert sorted(item.size for item in result.shadowed) == [10, 20]
    assert L.shadowed_total(result) == 30


def test_whiteout_deletes_a_file_and_everything_under_a_directory() -> None:
    result = L.replay(
        stack(
            [F("/keep", b"k"), F("/gone", b"g" * 7), D("/dir"), F("/dir/a", b"a" * 3)],
            [Wh("/gone"), Wh("/dir")],
        )
    )
    assert shadowed(result) == {"/gone": 7, "/dir/a": 3}
    assert {item.how for item in result.shadowed} == {"deleted"}
    assert sorted(result.files) == ["/keep"]


def test_opaque_dir_hides_lower_contents_but_not_its_own_layer() -> None:
    # The marker may come after the layer's own entries in the tar: order must not matter.
    result = L.replay(
        stack(
            [D("/cache"), F("/cache/old", b"o" * 5), F("/other", b"x")],
            [D("/cache"), F("/cache/new", b"n" * 4), Opq("/cache")],
        )
    )
    assert shadowed(result) == {"/cache/old": 5}
    assert "/cache/new" in result.files
    assert "/other" in result.files


def test_directory_reemitted_for_metadata_keeps_its_contents() -> None:
    result = L.replay(stack([D("/home"), F("/home/f", b"f")], [D("/home")]))
    assert result.shadowed == []
    assert "/home/f" in result.files


def test_file_replacing_a_directory_hides_what_was_below() -> None:
    result = L.replay(
        stack([D("/opt/x"), F("/opt/x/bin", b"b" * 9)], [Sym("/opt/x", "/usr/lib/x")])
    )
    assert shadowed(result) == {"/opt/x/bin": 9}
    assert result.files["/opt/x"].kind is L.Kind.SYMLINK


def test_overwriting_one_name_of_a_hard_link_hides_nothing() -> None:
    base = [F("/usr/bin/git", b"g" * 40), Hard("/usr/lib/git-core/git", "/usr/bin/git")]
    one = L.replay(stack(base, [F("/usr/bin/git", b"new")]))
    assert one.shadowed == []

    both = L.replay(stack(base, [Wh("/usr/bin/git"), Wh("/usr/lib/git-core/git")]))
    assert L.shadowed_total(both) == 40


def test_chmod_of_a_base_file_shadows_the_whole_file() -> None:
    # What `chmod a-s /usr/bin/su` in a later RUN does: the same bytes, copied up.
    su = b"\x7fELF" + b"s" * 1000
    result = L.replay(stack([F("/usr/bin/su", su)], [F("/usr/bin/su", su)]))
    assert L.shadowed_total(result) == len(su)


def test_shadowing_can_be_charged_to_the_layers_above_the_base() -> None:
    result = L.replay(
        stack([F("/etc/passwd", b"p" * 8)], [F("/etc/passwd", b"q" * 9)], [Wh("/etc/passwd")])
    )
    assert L.shadowed_total(result) == 17
    assert L.shadowed_total(result, by_layers_from=2) == 9
    assert [s.path for s in L.shadowed_by_path(result, by_layers_from=2)] == ["/etc/passwd"]


@pytest.mark.parametrize(
    ("base", "image", "expected"),
    [
        (["a", "b"], ["a", "b", "c"], 2),
        (["a"], ["a"], 1),
        (["a", "x"], ["a", "b", "c"], 0),  # not this image's base: charge everything
        ([], ["a"], 0),
    ],
)
def test_shared_prefix(base: list[str], image: list[str], expected: int) -> None:
    assert L.shared_prefix(base, image) == expected


# --------------------------------------------------------------------------------------------
# Duplicates, carried copies, symlinks


BIG = b"B" * 2048


def test_same_content_in_two_layers_is_a_duplicate() -> None:
    result = L.replay(
        stack(
            [F("/opt/cli/bin/claude.exe", BIG)],
            [F("/opt/cli/node_modules/pkg/claude", BIG), F("/small1", b"s"), F("/small2", b"s")],
        )
    )
    (dup,) = L.duplicates(result, min_size=1024)
    assert dup.size == len(BIG)
    assert dup.paths == (("/opt/cli/bin/claude.exe",), ("/opt/cli/node_modules/pkg/claude",))
    assert dup.wasted == len(BIG)


def test_hard_links_are_not_duplicates() -> None:
    result = L.replay(stack([F("/a", BIG), Hard("/b", "/a"), Hard("/c", "/a")]))
    assert L.duplicates(result, min_size=1024) == []


def test_files_below_min_size_are_ignored() -> None:
    result = L.replay(stack([F("/a", BIG)], [F("/b", BIG)]))
    assert L.duplicates(result, min_size=len(BIG) + 1) == []


def test_a_shadowed_copy_is_not_a_duplicate_but_is_carried() -> None:
    layers = stack([F("/a", BIG)], [F("/a", BIG)])
    result = L.replay(layers)
    assert L.duplicates(result, min_size=1024) == []
    digest = result.inodes[(1, "/a")].digest
    assert digest is not None
    assert L.carried(layers, digest) == 2


@pytest.mark.parametrize(
    "path",
    ["/opt/cli/bin/claude", "/usr/local/bin/claude", "/opt/cur/bin/claude.exe"],
)
def test_resolve_follows_relative_absolute_and_directory_symlinks(path: str) -> None:
    files = L.replay(
        stack(
            [
                D("/opt/cli/lib/pkg/bin"),
                F("/opt/cli/lib/pkg/bin/claude.exe", b"exe"),
                Sym("/opt/cli/bin/claude", "../lib/pkg/bin/claude.exe"),
                Sym("/usr/local/bin/claude", "/opt/cli/bin/claude"),
                Sym("/opt/cur", "cli/lib/pkg"),
            ]
        )
    ).files
    node = L.resolve(files, path)
    assert node is not None
    assert node.path == "/opt/cli/lib/pkg/bin/claude.exe"


def test_resolve_gives_up_on_loops_and_missing_paths() -> None:
    files = L.replay(stack([Sym("/a", "b"), Sym("/b", "a")])).files
    assert L.resolve(files, "/a") is None
    assert L.resolve(files, "/missing") is None


def test_breakdown_sums_visible_inodes_and_shadowed_bytes() -> None:
    image = L.Image(
        config={},
        layers=stack(
            [F("/usr/bin/su", b"s" * 10), F("/usr/local/bin/node", b"n" * 21)],
            [F("/usr/bin/su", b"s" * 10), F("/usr/bin/git", b"g" * 5), Hard("/g2", "/usr/bin/git")],
        ),
    )
    state = L.replay(image.layers)

    def classify(node: L.Node, layer: int) -> str | None:
        if node.path.startswith("/usr/local/"):
            return "node"
        return "base" if layer == 0 else None

    assert L.breakdown(image, state, classify) == {"node": 21, "other": 15, "shadowed": 10}
    assert sum(L.breakdown(image, state, classify).values()) == image.size


# --------------------------------------------------------------------------------------------
# A property: every byte a layer carries is either visible once or shadowed


PATHS = ["/a", "/a/x", "/a/y", "/b", "/b/z", "/c"]


@st.composite
def layer_stacks(draw: st.DrawFn) -> list[list[Member]]:
    result: list[list[Member]] = []
    for _ in range(draw(st.integers(1, 5))):
        members: list[Member] = []
        used: set[str] = set()
        for path in draw(st.lists(st.sampled_from(PATHS), max_size=6, unique=True)):
            if any(path.startswith(other + "/") or other.startswith(path + "/") for other in used):
                continue  # one layer never holds both a path and something below it
            used.add(path)
            kind = draw(st.sampled_from(["file", "dir", "whiteout", "opaque"]))
            if kind == "file":
                members.append(F(path, b"x" * draw(st.integers(0, 50))))
            elif kind == "dir":
                members.append(D(path))
            elif kind == "whiteout":
                members.append(Wh(path))
            else:
                members += [D(path), Opq(path)]
        result.append(members)
    return result


@settings(max_examples=200, deadline=None)
@given(layer_stacks())
def test_carried_bytes_are_visible_or_shadowed(layer_specs: list[list[Member]]) -> None:
    layers = stack(*layer_specs)
    result = L.replay(layers)
    visible = {node.inode for node in result.files.values() if node.inode is not None}
    visible_bytes = sum(result.inodes[key].size for key in visible)
    assert visible_bytes + L.shadowed_total(result) == sum(layer.size for layer in layers)


# --------------------------------------------------------------------------------------------
# Whole archives as `docker image save` writes them


def _blob(blobs: dict[str, bytes], data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"digest": digest, "size": len(data)}


def _json(obj: object) -> bytes:
    return json.dumps(obj).encode()


def write_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


HISTORY = [
    {"created_by": "/bin/sh -c #(nop) ADD file:abc in /"},
    {"created_by": "SHELL [/bin/sh -eux -c]", "empty_layer": True},
    {"created_by": "RUN /bin/sh -eux -c apt-get install -y git # buildkit"},
    {"created_by": "ENV A=1", "empty_layer": True},
    {"created_by": "COPY /opt/cli /opt/cli # buildkit"},
    {"created_by": "WORKDIR /workspace # buildkit"},
]


def oci_archive(
    tmp_path: Path,
    *,
    platforms: Sequence[str] = ("linux/amd64",),
    more: Sequence[Sequence[Member]] = (),
) -> Path:
    """An OCI layout like the containerd store saves: index -> index -> manifests (`more`:
    layers stacked on the four every platform has)."""
    blobs: dict[str, bytes] = {}
    empty = layer_tar([])
    manifests = []
    for platform in platforms:
        os_name, arch = platform.split("/")
        layer_blobs = [
            layer_tar([F("/etc/os-release", arch.encode())], compress=True),
            layer_tar([Wh("/etc/os-release"), F("/usr/bin/git", b"g")], compress=True),
            layer_tar([F("/opt/cli/claude", b"c" * 30)], compress=True),
            empty,
            *(layer_tar(members, compress=True) for members in more),
        ]
        layer_descs = [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(blobs, data)}
            for data in layer_blobs
        ]
        config = _json({"architecture": arch, "os": os_name, "history": HISTORY})
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": _blob(blobs, config),
                "layers": layer_descs,
            }
        )
        manifests.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **_blob(blobs, manifest),
                "platform": {"architecture": arch, "os": os_name},
            }
        )
    manifests.append(
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            **_blob(blobs, _json({"layers": [], "config": {"digest": "sha256:00"}})),
            "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
            "platform": {"architecture": "unknown", "os": "unknown"},
        }
    )
    # A platform listed in the index whose blobs were not saved (pulled for one arch only).
    manifests.insert(
        0,
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + "f" * 64,
            "size": 1,
            "platform": {"architecture": "s390x", "os": "linux"},
        },
    )
    inner = _json({"schemaVersion": 2, "manifests": manifests})
    index = {
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", **_blob(blobs, inner)}
        ],
    }
    files = {f"blobs/sha256/{d.split(':')[1]}": data for d, data in blobs.items()}
    files["index.json"] = _json(index)
    files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    return write_tar(tmp_path / "image.tar", files)


def test_read_archive_walks_oci_index_to_the_platform_manifest(tmp_path: Path) -> None:
    image = L.read_archive(oci_archive(tmp_path, platforms=["linux/amd64", "linux/arm64"]))
    assert [layer.step for layer in image.layers] == [
        "/bin/sh -c #(nop) ADD file:abc in /",
        "RUN apt-get install -y git",
        "COPY /opt/cli /opt/cli",
        "WORKDIR /workspace",
    ]
    assert [layer.size for layer in image.layers] == [5, 1, 30, 0]
    assert image.compressed_size == sum(layer.compressed_size for layer in image.layers) > 0
    state = L.replay(image.layers)
    assert shadowed(state) == {"/etc/os-release": 5}
    assert image.config["architecture"] == "amd64"

    arm = L.read_archive(tmp_path / "image.tar", platform="linux/arm64")
    assert arm.config["architecture"] == "arm64"
    assert arm.layers[0].size == len(b"arm64")


def test_archive_totals_and_steps(tmp_path: Path) -> None:
    image = L.read_archive(oci_archive(tmp_path), hash_min_size=1)
    assert image.size == 36
    state = L.replay(image.layers)
    assert L.shadowed_total(state) == 5
    assert [item.path for item in L.shadowed_by_path(state)] == ["/etc/os-release"]
    assert image.layers[1].step == "RUN apt-get install -y git"


def test_read_archive_reads_the_classic_docker_format(tmp_path: Path) -> None:
    base = layer_tar([F("/etc/passwd", b"root")])
    top = layer_tar([F("/etc/passwd", b"root\nagent")])
    config = {"history": [{"created_by": "ADD rootfs"}, {"created_by": "RUN useradd agent"}]}
    archive = write_tar(
        tmp_path / "docker.tar",
        {
            "manifest.json": _json(
                [{"Config": "config.json", "Layers": ["l0/layer.tar", "l1/layer.tar"]}]
            ),
            "config.json": _json(config),
            "l0/layer.tar": base,
            "l1/layer.tar": top,
        },
    )
    image = L.read_archive(archive)
    assert [layer.step for layer in image.layers] == ["ADD rootfs", "RUN useradd agent"]
    assert L.shadowed_total(L.replay(image.layers)) == 4


def test_not_an_image_archive_says_so(tmp_path: Path) -> None:
    with pytest.raises(L.ArchiveError, match="not an image archive"):
        L.read_archive(write_tar(tmp_path / "x.tar", {"hello": b"world"}))


def test_zstd_layers_are_refused_with_a_hint() -> None:
    with pytest.raises(L.ArchiveError, match="zstd"):
        L.read_layer(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"\0" * 600))


def test_find_bytes_reads_every_file_of_every_layer(tmp_path: Path) -> None:
    """Across a read-chunk boundary, in a file a later layer deletes, and nowhere else."""
    boundary = b"x" * (L._CHUNK - 3) + b"NEEDLE-ONE" + b"y" * 10
    archive = oci_archive(
        tmp_path,
        more=[
            [F("/big.bin", boundary), F("/hidden.pem", b"-- NEEDLE-TWO --")],
            [Wh("/hidden.pem")],
        ],
    )
    found = L.find_bytes(archive, [b"NEEDLE-ONE", b"NEEDLE-TWO", b"NEEDLE-THREE"])
    assert found == [(4, "/big.bin", b"NEEDLE-ONE"), (4, "/hidden.pem", b"NEEDLE-TWO")]
