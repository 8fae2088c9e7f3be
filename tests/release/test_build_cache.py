"""`invoke build --cache-to/--cache-from` against the loopback registry.

A registry cache is how CI runners without a shared disk reuse layers; this checks that
the flags reach buildx in a form the default builder accepts, that the cache lands in the
registry, and that a later build imports it.
"""

from __future__ import annotations

from releasekit import ReleaseRepo, registry_tags


def test_registry_build_cache_is_exported_and_imported(release_repo: ReleaseRepo) -> None:
    cache = f"{release_repo.registry}/{release_repo.repo}-cache:buildcache"

    exported = release_repo.invoke("build", "--cache-to", cache)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "buildcache" in registry_tags(release_repo.registry, f"{release_repo.repo}-cache")

    imported = release_repo.invoke("build", "--cache-from", cache)
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert f"importing cache manifest from {cache}" in imported.stdout + imported.stderr
