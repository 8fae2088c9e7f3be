"""A small client for the registry HTTP API v2 (urllib only): ping, tags, manifests, retag.

Loopback registries (127.0.0.1, localhost, ::1) are spoken to over plain http, as Docker does.
Authentication: anonymous bearer tokens, or basic credentials stored by `docker login` in
~/.docker/config.json (credential helpers are not consulted: use `docker push` for those).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from agentimage.errors import AgentImageError, ExitCode

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[:2]
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def split_reference(repository: str) -> tuple[str, str]:
    """'127.0.0.1:5000/agentgate/agent' -> ('127.0.0.1:5000', 'agentgate/agent')."""
    head, _, rest = repository.partition("/")
    if rest and ("." in head or ":" in head or head == "localhost"):
        return head, rest
    return "registry-1.docker.io", repository if "/" in repository else f"library/{repository}"


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def base_url(host: str) -> str:
    scheme = "http" if is_loopback(host) else "https"
    return f"{scheme}://{host}"


def docker_config_auth(host: str, config_dir: Path | None = None) -> str | None:
    """The base64 'user:password' `docker login` stored for host, if any."""
    directory = config_dir or Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
    try:
        data = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key, entry in (data.get("auths") or {}).items():
        if key.removeprefix("https://").removeprefix("http://").split("/")[0] == host:
            return entry.get("auth") or None
    return None


def has_login(host: str, config_dir: Path | None = None) -> bool:
    directory = config_dir or Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
    try:
        data = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    auths = {k.removeprefix("https://").split("/")[0] for k in (data.get("auths") or {})}
    return host in auths or host in (data.get("credHelpers") or {})


@dataclass
class Registry:
    host: str
    timeout: float = 10.0
    _token: str | None = field(default=None, repr=False)

    # -- transport ---------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        retry_auth: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        url = base_url(self.host) + path
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310 (http(s) only)
        if self._token:
            request.add_header("Authorization", self._token)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            if (
                exc.code == 401
                and retry_auth
                and self._authenticate(exc.headers.get("WWW-Authenticate", ""))
            ):
                return self._request(method, path, headers=headers, body=body, retry_auth=False)
            return exc.code, dict(exc.headers), exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AgentImageError(
                f"registry {self.host} is unreachable ({reason}); "
                "start it or pass another --registry",
                ExitCode.REGISTRY,
            ) from exc

    def _authenticate(self, challenge: str) -> bool:
        basic = docker_config_auth(self.host)
        if challenge.lower().startswith("basic"):
            if basic:
                self._token = f"Basic {basic}"
                return True
            return False
        if not challenge.lower().startswith("bearer"):
            return False
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            return False
        headers = {"Authorization": f"Basic {basic}"} if basic else {}
        request = urllib.request.Request(  # noqa: S310 (realm is http(s), checked above)
            realm + "?" + urllib.parse.urlencode(params), headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                data = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return False
        token = data.get("token") or data.get("access_token")
        if not token:
            return False
        self._token = f"Bearer {token}"
        return True

    # -- API -----------------------------------------------------------------------------
    def ping(self, *, need_push: bool = False) -> None:
        """Reachable, and (for pushing to a non-loopback registry) logged in."""
        status, _, _ = self._request("GET", "/v2/", retry_auth=False)
        if status == 200:
            return
        if status == 401:
            if need_push and not has_login(self.host):
                raise AgentImageError(
                    f"not logged in to registry {self.host}; run docker login {self.host}",
                    ExitCode.REGISTRY,
                )
            return
        raise AgentImageError(
            f"registry {self.host} answered HTTP {status} on /v2/; check the registry address",
            ExitCode.REGISTRY,
        )

    def list_tags(self, repo: str) -> list[str]:
        tags: list[str] = []
        path = f"/v2/{repo}/tags/list?n=1000"
        while path:
            status, headers, body = self._request("GET", path)
            if status == 404:
                return tags
            self._check(status, f"list tags of {repo}")
            tags += json.loads(body or b"{}").get("tags") or []
            link = headers.get("Link") or headers.get("link") or ""
            match = re.match(r"<([^>]+)>", link)
            path = match.group(1) if match else ""
        return tags

    def manifest(self, repo: str, reference: str) -> tuple[str, str, bytes] | None:
        """(media type, digest, raw body) of a tag or digest, or None when absent."""
        status, headers, body = self._request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        if status == 404:
            return None
        self._check(status, f"read manifest {repo}:{reference}")
        media = headers.get("Content-Type") or json.loads(body).get("mediaType", "")
        digest = headers.get("Docker-Content-Digest", "")
        return media.split(";")[0].strip(), digest, body

    def digest(self, repo: str, reference: str) -> str | None:
        found = self.manifest(repo, reference)
        return found[1] if found else None

    def platforms(self, repo: str, reference: str) -> list[str]:
        """os/arch[/variant] of every image under a tag (attestation entries left out)."""
        found = self.manifest(repo, reference)
        if found is None:
            raise AgentImageError(
                f"{self.host}/{repo}:{reference} does not exist; push it first", ExitCode.REGISTRY
            )
        media, _, body = found
        data = json.loads(body)
        if media not in INDEX_TYPES:
            return ["single-platform manifest"]
        result = []
        for entry in data.get("manifests", []):
            platform = entry.get("platform") or {}
            os_name, arch = platform.get("os", "unknown"), platform.get("architecture", "unknown")
            if os_name == "unknown" or arch == "unknown":
                continue
            result.append("/".join(filter(None, (os_name, arch, platform.get("variant")))))
        return result

    def retag(self, repo: str, source: str, tag: str) -> str:
        """Point `tag` at the manifest of `source` (same repository); returns the digest."""
        found = self.manifest(repo, source)
        if found is None:
            raise AgentImageError(
                f"{self.host}/{repo}:{source} does not exist; push it before tagging {tag}",
                ExitCode.REGISTRY,
            )
        media, digest, body = found
        status, _, reply = self._request(
            "PUT", f"/v2/{repo}/manifests/{tag}", headers={"Content-Type": media}, body=body
        )
        self._check(status, f"tag {repo}:{tag}", reply)
        return digest

    def _check(self, status: int, what: str, body: bytes = b"") -> None:
        if 200 <= status < 300:
            return
        if status in (401, 403):
            raise AgentImageError(
                f"registry {self.host} refused to {what} (HTTP {status}); "
                f"run docker login {self.host}",
                ExitCode.REGISTRY,
            )
        detail = body[:200].decode("utf-8", "replace").strip().replace("\n", " ")
        raise AgentImageError(
            f"registry {self.host} failed to {what} (HTTP {status} {detail}); check the registry",
            ExitCode.REGISTRY,
        )
