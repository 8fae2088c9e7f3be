"""The gateway's forward proxy (3128), driven from the sandbox network with curl.

Real origins listen on the outside network under allowed and forbidden names, on ports 80,
443, 8080 and 8443 (plain HTTP on all of them: through a CONNECT tunnel curl speaks HTTP, so
a 200 from the origin proves the tunnel opened). Each denial is checked against a destination
that is really there, and the forbidden origin's log must show that nothing arrived.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from docker.models.networks import Network
from docker.types import IPAMConfig, IPAMPool
from gatewaykit import Gateway, Origin, Probe, Testbed
from script_container import address_on


@pytest.mark.parametrize(
    ("url", "tunnel"),
    [
        ("http://allowed.agentgate.test/", False),
        ("http://allowed.agentgate.test:443/", True),
        # .sub.agentgate.test in the allowlist admits its subdomains
        ("http://deep.sub.agentgate.test/", False),
        ("http://deep.sub.agentgate.test:443/", True),
    ],
)
def test_allowed_domain_is_reachable(
    url: str, tunnel: bool, gateway: Gateway, sandbox_probe: Probe, allowed_origin: Origin
) -> None:
    result = sandbox_probe.curl("-x", gateway.proxy_url, *(["-p"] if tunnel else []), url)
    assert result.status == 200, f"{result}\n--- gateway logs ---\n{gateway.logs()}"
    assert result.json()["origin"] == "allowed"
    if tunnel:
        assert result.connect_status == 200
    else:
        # Nothing about the sandbox or the proxy is passed on to the destination.
        headers = result.json()["headers"]
        assert "via" not in headers
        assert "x-forwarded-for" not in headers


DENIED = [
    # name not in the allowlist, by plain HTTP and by CONNECT
    ("http://forbidden.agentgate.test/", False),
    ("http://forbidden.agentgate.test:443/", True),
    # ends like an allowed ".sub.agentgate.test" entry, but is not one of its subdomains
    ("http://xsub.agentgate.test/", False),
    # an allowed name, but a port other than 80 (HTTP) or 443 (CONNECT)
    ("http://allowed.agentgate.test:8080/", False),
    ("http://allowed.agentgate.test:8443/", True),
    ("http://allowed.agentgate.test:80/", True),
    # localhost and IP literals, v4 (also as one number) and v6
    ("http://localhost/", False),
    ("http://localhost:443/", True),
    ("http://127.0.0.1:3128/", False),
    ("http://2130706433/", False),
    ("http://[::1]/", False),
    ("http://[::1]:443/", True),
    ("http://169.254.169.254/latest/meta-data/", False),
    # allowed names that resolve to loopback and to the metadata address
    ("http://loopback.agentgate.test/", False),
    ("http://loopback.agentgate.test:443/", True),
    ("http://metadata.agentgate.test/", False),
    ("http://metadata.agentgate.test:443/", True),
]


@pytest.mark.parametrize(("url", "tunnel"), DENIED)
def test_everything_else_gets_403(
    url: str,
    tunnel: bool,
    gateway: Gateway,
    sandbox_probe: Probe,
    allowed_origin: Origin,
    forbidden_origin: Origin,
) -> None:
    before = len(allowed_origin.requests()), len(forbidden_origin.requests())
    result = sandbox_probe.curl("-x", gateway.proxy_url, *(["-p"] if tunnel else []), url)
    status = result.connect_status if tunnel else result.status
    assert status == 403, result
    after = len(allowed_origin.requests()), len(forbidden_origin.requests())
    assert after == before, f"{url} reached an origin"


@pytest.mark.parametrize("tunnel", [False, True])
def test_forbidden_origin_by_ip_is_refused_by_the_proxy(
    tunnel: bool,
    gateway: Gateway,
    sandbox_probe: Probe,
    forbidden_origin: Origin,
    outside_network: Network,
) -> None:
    address = address_on(forbidden_origin.container, outside_network)
    url = f"http://{address}:443/" if tunnel else f"http://{address}/"
    result = sandbox_probe.curl("-x", gateway.proxy_url, *(["-p"] if tunnel else []), url)
    assert (result.connect_status if tunnel else result.status) == 403, result


def test_forbidden_origin_is_unreachable_without_the_proxy(
    sandbox_probe: Probe, outside_probe: Probe, forbidden_origin: Origin, outside_network: Network
) -> None:
    address = address_on(forbidden_origin.container, outside_network)
    before = len(forbidden_origin.requests())
    # Positive control: from the outside network the origin answers, by address and by name.
    assert outside_probe.curl(f"http://{address}/").status == 200
    assert outside_probe.curl("http://forbidden.agentgate.test/").status == 200
    # From the sandbox network: no route to the address, and the name does not resolve.
    by_address = sandbox_probe.curl("--connect-timeout", "3", f"http://{address}/")
    assert by_address.status == 0, by_address
    assert by_address.exit_code in {7, 28}, by_address  # could not connect / timed out
    by_name = sandbox_probe.curl("--connect-timeout", "3", "http://forbidden.agentgate.test/")
    assert by_name.exit_code == 6, by_name  # could not resolve host
    assert len(forbidden_origin.requests()) == before + 2, "only the controls may arrive"


@pytest.fixture
def ipv6_network(testbed: Testbed) -> Iterator[Network]:
    """An IPv6 network beside the outside one (internal: nothing leaves this machine)."""
    network = testbed.client.networks.create(
        f"{testbed.prefix}-v6-{uuid.uuid4().hex[:6]}",
        driver="bridge",
        internal=True,
        enable_ipv6=True,
        ipam=IPAMConfig(pool_configs=[IPAMPool(subnet="fd00:a9e7:6::/64")]),
        labels=dict(testbed.labels),
    )
    yield network
    network.reload()
    for container in network.containers:
        network.disconnect(container, force=True)
    network.remove()


def test_forbidden_origin_is_unreachable_over_ipv6(
    sandbox_probe: Probe,
    outside_probe: Probe,
    forbidden_origin: Origin,
    gateway: Gateway,
    ipv6_network: Network,
) -> None:
    """The sandbox network has no IPv6 at all: no address, no route. The forbidden origin
    gets an IPv6 address, where the positive control reaches it."""
    ipv6_network.connect(forbidden_origin.container)
    ipv6_network.connect(outside_probe.container)
    forbidden_origin.container.reload()
    address = forbidden_origin.container.attrs["NetworkSettings"]["Networks"][ipv6_network.name][
        "GlobalIPv6Address"
    ]
    assert address.startswith("fd00:a9e7:6:"), address
    before = len(forbidden_origin.requests())

    assert outside_probe.curl("-g", f"http://[{address}]/").status == 200  # the control
    direct = sandbox_probe.curl("-g", "--connect-timeout", "3", f"http://[{address}]/")
    assert direct.status == 0, direct
    assert direct.exit_code in {7, 28}, direct  # could not connect / timed out
    proxied = sandbox_probe.curl("-g", "-x", gateway.proxy_url, f"http://[{address}]/")
    assert proxied.status == 403, proxied
    _, routes, _, _ = sandbox_probe.exec(["cat", "/proc/net/if_inet6", "/proc/net/ipv6_route"])
    assert "fd00" not in routes, f"the sandbox has an IPv6 address or route:\n{routes}"
    assert len(forbidden_origin.requests()) == before + 1, "only the control may arrive"
