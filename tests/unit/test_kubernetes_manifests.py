"""deploy/kubernetes/: valid Kubernetes objects that keep the agent contained, without a cluster.

Three layers, each able to fail on its own:

1. Every document validates against the Kubernetes OpenAPI schema (kubernetes-validate's
   strict schemas: an unknown or misspelt field is an error) for every Kubernetes minor
   version the package bundles, plus the cross-references the API server or the kubelet
   would trip over (a mount without a volume, a selector that selects nothing).
2. The agent Job and the gateway Deployment carry the hardening of issue 9 field by field;
   `agent_violations` and `gateway_violations` list every departure.
3. The NetworkPolicies, evaluated by tests/support/network_policy.py, allow an agent to reach
   the gateway's two ports and nothing else; `network_violations` lists every connection
   whose answer is wrong.

Each rule also has a mutation test: a copy of the manifests with that one field removed or
weakened must be reported, so no check here passes vacuously.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st
from network_policy import (
    External,
    Pod,
    Protocol,
    connection_allowed,
    egress_allowed,
    ingress_allowed,
    selector_matches,
)

# The kubernetes extra (nox -s unit installs it); by hand without it these tests skip.
kubernetes_validate = pytest.importorskip("kubernetes_validate")

REPO = Path(__file__).resolve().parents[2]
KUBERNETES_DIR = REPO / "deploy" / "kubernetes"
KUSTOMIZATION = KUBERNETES_DIR / "kustomization.yaml"
# Applied per agent run, after the kustomization (see test_the_kustomization_...).
PER_RUN_FILES = {"agent-job.yaml", "workspace-claim.yaml"}

Document = dict[str, Any]
# Changes a copy of the documents in place, to weaken or break one thing.
Mutation = Callable[[list[Document]], Any]

NAMESPACE = "agentgate"
NAME_LABEL = "app.kubernetes.io/name"
AGENT_NAME = "agentgate-agent"
GATEWAY_NAME = "agentgate-gateway"
GATEWAY_SECRET = "agentgate-gateway-credentials"
GATEWAY_SECRET_KEY = "anthropic-api-key"
AGENT_UID = 1000
GATEWAY_UID = 1100
MODEL_API_PORT = 8080
EGRESS_PROXY_PORT = 3128
GATEWAY_PORTS = {MODEL_API_PORT, EGRESS_PROXY_PORT}
AGENT_HOME = "/home/agentgate"
WORKSPACE = "/workspace"
# Kubernetes injects <SERVICE>_SERVICE_HOST into pods created after the Service; with no
# DNS for agents (networkpolicy.yaml) it is how they find the gateway.
GATEWAY_HOST = "$(AGENTGATE_GATEWAY_SERVICE_HOST)"
API_KEY_PLACEHOLDER = "placeholder-the-gateway-injects-the-real-key"
EXPECTED_AGENT_ENV = {
    "ANTHROPIC_BASE_URL": f"http://{GATEWAY_HOST}:{MODEL_API_PORT}",
    "ANTHROPIC_API_KEY": API_KEY_PLACEHOLDER,
    **{
        name: f"http://{GATEWAY_HOST}:{EGRESS_PROXY_PORT}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    },
    "NO_PROXY": f"{GATEWAY_HOST},{GATEWAY_NAME}",
    "no_proxy": f"{GATEWAY_HOST},{GATEWAY_NAME}",
}
# Credentials the CLI would use besides ANTHROPIC_API_KEY: none may reach an agent pod.
CREDENTIAL_ENV = {"ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"}
ANTHROPIC_KEY_SHAPE = re.compile(r"sk-ant-")
# The writable paths of the Docker recipe (tmpfs /tmp 256m, HOME 64m, the workspace).
AGENT_EMPTY_DIRS = {"/tmp": "256Mi", AGENT_HOME: "64Mi"}
AGENT_MEMORY_LIMIT = "1Gi"


# --- loading ------------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(path for path in KUBERNETES_DIR.glob("*.yaml") if path != KUSTOMIZATION)


def load_documents() -> list[Document]:
    return [
        document
        for path in manifest_files()
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


MANIFESTS = load_documents()


@pytest.fixture
def documents() -> list[Document]:
    """A private copy of every document, free to mutate."""
    return copy.deepcopy(MANIFESTS)


def find(documents: list[Document], kind: str, name: str) -> Document:
    matches = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def agent_pod(documents: list[Document]) -> dict[str, Any]:
    return find(documents, "Job", AGENT_NAME)["spec"]["template"]["spec"]


def gateway_pod(documents: list[Document]) -> dict[str, Any]:
    return find(documents, "Deployment", GATEWAY_NAME)["spec"]["template"]["spec"]


def the_container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_spec["containers"]
    return container


def all_containers(pod_spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod_spec.get(field) or []


def pod_templates(documents: list[Document]) -> Iterator[tuple[str, dict[str, Any]]]:
    for document in documents:
        if document["kind"] in {"Job", "Deployment"}:
            yield f"{document['kind']} {document['metadata']['name']}", document["spec"]["template"]


def network_policies(documents: list[Document]) -> list[Document]:
    return [d for d in documents if d["kind"] == "NetworkPolicy"]


QUANTITY = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>[A-Za-z]*)$")
QUANTITY_SUFFIXES = {
    "": Fraction(1),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
}


def quantity(value: str | int) -> Fraction:
    """A Kubernetes resource quantity ("256Mi", "500m", 2) as an exact number."""
    match = QUANTITY.match(str(value))
    if not match or match["suffix"] not in QUANTITY_SUFFIXES:
        raise ValueError(f"not a Kubernetes quantity this test understands: {value!r}")
    return Fraction(match["number"]) * QUANTITY_SUFFIXES[match["suffix"]]


# --- 1. the Kubernetes API schema ---------------------------------------------------------


def bundled_kubernetes_versions() -> list[str]:
    """Every minor version whose schemas kubernetes-validate ships (1.25 ... its newest)."""
    versions = {".".join(v.split(".")[:2]) for v in kubernetes_validate.utils.all_versions()}
    return sorted(versions, key=lambda v: tuple(int(part) for part in v.split(".")))


def schema_errors(document: Document, version: str) -> list[str]:
    label = f"{document.get('kind')} {document.get('metadata', {}).get('name')}"
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return [f"{label}: {path}: {error.message}"]
    except kubernetes_validate.utils.SchemaNotFoundError as error:
        return [f"{label}: {error.message}"]
    return []


@pytest.mark.parametrize("version", bundled_kubernetes_versions())
def test_every_document_is_valid_against_the_kubernetes_api_schema(
    documents: list[Document], version: str
) -> None:
    errors = [error for document in documents for error in schema_errors(document, version)]
    assert errors == [], "\n".join(errors)


def test_the_schema_check_covers_the_kubernetes_releases_in_support() -> None:
    # Upstream supports its three newest minor releases. A package that shipped older
    # schemas only, or none (an empty parametrization above), would prove nothing.
    versions = bundled_kubernetes_versions()
    newest_minor = int(versions[-1].split(".")[1])
    assert newest_minor >= 37
    assert len(versions) >= 3


def newest_schema_errors(documents: list[Document]) -> list[str]:
    newest = bundled_kubernetes_versions()[-1]
    return [error for document in documents for error in schema_errors(document, newest)]


# (what is broken, how, a phrase the report must contain)
SCHEMA_MUTATIONS: list[tuple[str, Mutation, str]] = [
    (
        "misspelt field",
        lambda d: the_container(agent_pod(d))["securityContext"].update(
            readOnlyRootFileSystem=True
        ),
        "'readOnlyRootFileSystem' was unexpected",
    ),
    (
        "string for an integer",
        lambda d: agent_pod(d)["securityContext"].update(runAsUser="1000"),
        "'1000' is not of type",
    ),
    (
        "required field missing",
        lambda d: the_container(agent_pod(d)).update(volumeMounts=[{"mountPath": "/tmp"}]),
        "'name' is a required property",
    ),
    (
        "unknown API version",
        lambda d: find(d, "Job", AGENT_NAME).update(apiVersion="batch/v2"),
        "Couldn't find schema",
    ),
    (
        "policy port of the wrong type",
        lambda d: find(d, "NetworkPolicy", AGENT_NAME)["spec"]["egress"][0]["ports"][0].update(
            port=[8080]
        ),
        "is not valid under any of the given schemas",
    ),
]


def reference_errors(documents: list[Document]) -> list[str]:
    """What the API server or kubelet would refuse or leave broken, beyond the schema."""
    errors = []
    defined = {(d["kind"], d["metadata"]["name"]) for d in documents}
    for label, template in pod_templates(documents):
        spec = template["spec"]
        volumes = {volume["name"] for volume in spec.get("volumes") or []}
        for container in all_containers(spec):
            for mount in container.get("volumeMounts") or []:
                if mount["name"] not in volumes:
                    errors.append(f"{label}: mount {mount['mountPath']} names no volume")
            for port in container.get("ports") or []:
                if len(port.get("name", "")) > 15:
                    errors.append(f"{label}: port name {port['name']!r} is over 15 characters")
        account = spec.get("serviceAccountName")
        if account and ("ServiceAccount", account) not in defined:
            errors.append(f"{label}: ServiceAccount {account} is not defined here")
        for volume in spec.get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and ("PersistentVolumeClaim", claim) not in defined:
                errors.append(f"{label}: claim {claim} is not defined here")
    for document in documents:
        if document["kind"] == "Deployment":
            selector = document["spec"]["selector"]
            if not selector_matches(selector, document["spec"]["template"]["metadata"]["labels"]):
                errors.append(
                    f"Deployment {document['metadata']['name']}: selector misses template"
                )
        if document["kind"] == "Job":
            restart = document["spec"]["template"]["spec"].get("restartPolicy")
            if restart not in {"Never", "OnFailure"}:
                errors.append(f"Job {document['metadata']['name']}: restartPolicy {restart}")
    return errors


def test_every_reference_between_the_documents_resolves(documents: list[Document]) -> None:
    assert reference_errors(documents) == []


# (what is broken, how, a phrase the report must contain)
REFERENCE_MUTATIONS: list[tuple[str, Mutation, str]] = [
    (
        "mount without volume",
        lambda d: the_container(agent_pod(d))["volumeMounts"][0].update(name="typo"),
        "names no volume",
    ),
    (
        "unknown service account",
        lambda d: agent_pod(d).update(serviceAccountName="default-ish"),
        "ServiceAccount",
    ),
    (
        "deployment selector",
        lambda d: find(d, "Deployment", GATEWAY_NAME)["spec"]["selector"].update(
            matchLabels={NAME_LABEL: "gateway"}
        ),
        "selector",
    ),
    (
        "job restarts always",
        lambda d: agent_pod(d).update(restartPolicy="Always"),
        "restartPolicy",
    ),
    (
        "port name too long",
        lambda d: the_container(gateway_pod(d))["ports"][0].update(name="model-api-reverse-proxy"),
        "over 15 characters",
    ),
]


def test_every_namespaced_object_lives_in_the_agentgate_namespace(
    documents: list[Document],
) -> None:
    (namespace,) = (d for d in documents if d["kind"] == "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    elsewhere = [
        f"{d['kind']} {d['metadata']['name']}"
        for d in documents
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != NAMESPACE
    ]
    assert elsewhere == []


def test_the_namespace_enforces_the_restricted_pod_security_standard(
    documents: list[Document],
) -> None:
    labels = find(documents, "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_kustomization_applies_the_standing_objects_and_not_the_run() -> None:
    # An agent pod created before the NetworkPolicies would start with open egress, and one
    # created before the gateway Service would have no AGENTGATE_GATEWAY_SERVICE_HOST: the
    # per-run files are applied after `kubectl apply -k`, never as part of it.
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    resources = set(kustomization["resources"])
    assert kustomization["namespace"] == NAMESPACE
    assert resources.isdisjoint(PER_RUN_FILES)
    assert resources | PER_RUN_FILES == {path.name for path in manifest_files()}
    assert {"namespace.yaml", "networkpolicy.yaml", "gateway.yaml"} <= resources


# --- 2. pod hardening ---------------------------------------------------------------------

# The pod-level fields a container may override; what counts is the container's value.
OVERRIDABLE = (
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "seccompProfile",
    "seLinuxOptions",
    "appArmorProfile",
)
# Before the appArmorProfile field (1.30), AppArmor was set by pod annotations, still honoured.
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def hardening_violations(template: dict[str, Any], uid: int) -> list[str]:
    """Departures from issue 9's hardening in one pod template, for every container in it."""
    problems = []
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    for key, value in annotations.items():
        if key.startswith(APPARMOR_ANNOTATION) and value != "runtime/default":
            problems.append(f"{key.removeprefix(APPARMOR_ANNOTATION)}: appArmorProfile {value}")
    pod_spec = template["spec"]
    pod_context = pod_spec.get("securityContext") or {}
    if pod_spec.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken must be false: no API token in the pod")
    for flag in ("hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace"):
        if pod_spec.get(flag):
            problems.append(f"{flag} must be false")
    if pod_context.get("fsGroup") != uid:
        problems.append(f"fsGroup must be {uid}")
    if pod_context.get("sysctls"):
        problems.append("no sysctls")
    for volume in pod_spec.get("volumes") or []:
        if "hostPath" in volume:
            problems.append(f"volume {volume['name']}: hostPath exposes the node")
    for container in all_containers(pod_spec):
        name = container["name"]
        context = container.get("securityContext") or {}
        effective = {key: pod_context.get(key) for key in OVERRIDABLE} | {
            key: context[key] for key in OVERRIDABLE if key in context
        }
        if effective["runAsNonRoot"] is not True:
            problems.append(f"{name}: runAsNonRoot must be true")
        if effective["runAsUser"] != uid:
            problems.append(f"{name}: runAsUser must be {uid}, is {effective['runAsUser']}")
        if effective["runAsGroup"] != uid:
            problems.append(f"{name}: runAsGroup must be {uid}, is {effective['runAsGroup']}")
        if (effective["seccompProfile"] or {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: seccompProfile must be RuntimeDefault")
        if effective["seLinuxOptions"]:
            problems.append(f"{name}: seLinuxOptions may relabel the container (spc_t)")
        if (effective["appArmorProfile"] or {}).get("type", "RuntimeDefault") != "RuntimeDefault":
            problems.append(f"{name}: appArmorProfile must stay RuntimeDefault")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem must be true")
        if context.get("privileged") not in (None, False):
            problems.append(f"{name}: privileged must be absent or false")
        capabilities = context.get("capabilities") or {}
        if capabilities.get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities.drop must be [ALL]")
        if capabilities.get("add"):
            problems.append(f"{name}: capabilities.add must be empty")
        if context.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount must be Default")
        if any("hostPort" in port for port in container.get("ports") or []):
            problems.append(f"{name}: hostPort binds a port on the node")
    return problems


def secret_references(pod_spec: dict[str, Any]) -> list[str]:
    """Every way a Secret (or an API token) could reach the pod's containers."""
    found = []
    for volume in pod_spec.get("volumes") or []:
        if "secret" in volume:
            found.append(f"volume {volume['name']}: secret {volume['secret'].get('secretName')}")
        for source in (volume.get("projected") or {}).get("sources") or []:
            if {"secret", "serviceAccountToken"} & source.keys():
                found.append(f"volume {volume['name']}: projected {sorted(source)}")
    for container in all_containers(pod_spec):
        for variable in container.get("env") or []:
            if "secretKeyRef" in (variable.get("valueFrom") or {}):
                found.append(f"{container['name']}: env {variable['name']} from a Secret")
        for source in container.get("envFrom") or []:
            if "secretRef" in source:
                found.append(f"{container['name']}: envFrom secret {source['secretRef']}")
    return found


def agent_violations(documents: list[Document]) -> list[str]:
    """Departures from the agent Job's contract: hardening, storage, env, limits, network."""
    job = find(documents, "Job", AGENT_NAME)
    pod_spec = job["spec"]["template"]["spec"]
    container = the_container(pod_spec)
    problems = hardening_violations(job["spec"]["template"], AGENT_UID)
    problems += [f"the agent holds a credential: {found}" for found in secret_references(pod_spec)]

    account = find(documents, "ServiceAccount", pod_spec.get("serviceAccountName", "default"))
    if account.get("automountServiceAccountToken") is not False:
        problems.append("the agent's ServiceAccount must not automount a token either")

    # Storage: the workspace claim and two size-bounded memory filesystems, nothing else.
    volumes = {volume["name"]: volume for volume in pod_spec.get("volumes") or []}
    for name, volume in volumes.items():
        kinds = set(volume) - {"name"}
        if not kinds <= {"emptyDir", "persistentVolumeClaim"}:
            problems.append(f"volume {name}: {sorted(kinds)} is not an agent volume type")
        if "emptyDir" in volume and "sizeLimit" not in volume["emptyDir"]:
            problems.append(f"volume {name}: emptyDir without sizeLimit can fill the node")
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts") or []}
    if set(mounts) != {WORKSPACE, *AGENT_EMPTY_DIRS}:
        problems.append(f"writable mounts must be {WORKSPACE} and {sorted(AGENT_EMPTY_DIRS)}")
    for path, size in AGENT_EMPTY_DIRS.items():
        empty_dir = volumes.get(mounts.get(path, {}).get("name"), {}).get("emptyDir")
        if empty_dir is None:
            problems.append(f"{path} must be an emptyDir")
            continue
        if quantity(empty_dir.get("sizeLimit", 0)) != quantity(size):
            problems.append(f"{path}: emptyDir sizeLimit must be {size}")
        if empty_dir.get("medium") != "Memory":
            problems.append(f"{path}: medium Memory, so the kernel enforces sizeLimit at once")
    workspace = volumes.get(mounts.get(WORKSPACE, {}).get("name"), {})
    if "persistentVolumeClaim" not in workspace or mounts[WORKSPACE].get("readOnly"):
        problems.append(f"{WORKSPACE} must be a writable PersistentVolumeClaim")

    # Environment: the gateway's address and a placeholder key; no credential at all.
    env = {variable["name"]: variable for variable in container.get("env") or []}
    for name, value in EXPECTED_AGENT_ENV.items():
        if env.get(name, {}).get("value") != value:
            problems.append(f"env {name} must be {value!r}")
    for name in CREDENTIAL_ENV & env.keys():
        problems.append(f"env {name}: the agent must hold no credential")
    for name, variable in env.items():
        if ANTHROPIC_KEY_SHAPE.search(str(variable.get("value", ""))):
            problems.append(f"env {name} holds something shaped like an Anthropic key")
    if container.get("envFrom"):
        problems.append("envFrom may bring in anything: name each variable instead")

    # Network identity: no cluster DNS, and the service links the env relies on.
    nameservers = (pod_spec.get("dnsConfig") or {}).get("nameservers")
    if pod_spec.get("dnsPolicy") != "None" or nameservers != ["127.0.0.1"]:
        problems.append("dnsPolicy None with nameserver 127.0.0.1: agents get no DNS")
    if pod_spec.get("enableServiceLinks") is False:
        problems.append("enableServiceLinks off: AGENTGATE_GATEWAY_SERVICE_HOST is never set")

    # Resources: bounded memory and CPU; tmpfs data counts against the memory limit.
    limits = (container.get("resources") or {}).get("limits") or {}
    if quantity(limits.get("memory", 0)) != quantity(AGENT_MEMORY_LIMIT):
        problems.append(f"limits.memory must be {AGENT_MEMORY_LIMIT}")
    if quantity(limits.get("cpu", 0)) <= 0:
        problems.append("limits.cpu must be set")
    if "ephemeral-storage" not in limits:
        problems.append("limits.ephemeral-storage must be set (logs fill the node otherwise)")

    # The run: bounded in time, never silently repeated.
    if job["spec"].get("backoffLimit") != 0:
        problems.append("backoffLimit must be 0: a failed run is not repeated on its own")
    if not job["spec"].get("activeDeadlineSeconds"):
        problems.append("activeDeadlineSeconds must bound the run")
    return problems


def gateway_violations(documents: list[Document]) -> list[str]:
    """Departures from the gateway's contract: hardening and where its credential lives."""
    template = find(documents, "Deployment", GATEWAY_NAME)["spec"]["template"]
    pod_spec = template["spec"]
    container = the_container(pod_spec)
    problems = hardening_violations(template, GATEWAY_UID)
    volumes = {volume["name"]: volume for volume in pod_spec.get("volumes") or []}
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts") or []}
    env = {variable["name"]: variable for variable in container.get("env") or []}

    tmp = volumes.get(mounts.get("/tmp", {}).get("name"), {}).get("emptyDir")
    if tmp is None or "sizeLimit" not in tmp:
        problems.append("/tmp must be an emptyDir with a sizeLimit")
    for name, volume in volumes.items():
        if not set(volume) - {"name"} <= {"emptyDir", "secret"}:
            problems.append(f"volume {name}: not an emptyDir or the credentials Secret")
        if "emptyDir" in volume and "sizeLimit" not in volume["emptyDir"]:
            problems.append(f"volume {name}: emptyDir without sizeLimit")

    # The key: one file from one Secret, mounted read-only, named by ANTHROPIC_API_KEY_FILE.
    key_files = [
        f"{mount['mountPath']}/{item['path']}"
        for mount in mounts.values()
        if "secret" in volumes.get(mount["name"], {})
        and volumes[mount["name"]]["secret"].get("secretName") == GATEWAY_SECRET
        for item in volumes[mount["name"]]["secret"].get("items") or []
        if item["key"] == GATEWAY_SECRET_KEY
    ]
    if env.get("ANTHROPIC_API_KEY_FILE", {}).get("value") not in key_files:
        problems.append(f"ANTHROPIC_API_KEY_FILE must name the mounted {GATEWAY_SECRET} key")
    for mount in mounts.values():
        if "secret" in volumes.get(mount["name"], {}) and mount.get("readOnly") is not True:
            problems.append(f"{mount['mountPath']}: the credentials mount must be read-only")
    in_env = [found for found in secret_references(pod_spec) if "env" in found]
    if in_env or "ANTHROPIC_API_KEY" in env:
        problems.append(f"the key belongs in a file, not the environment: {in_env}")
    if "GATEWAY_ALLOWED_DOMAINS" not in env:
        problems.append("GATEWAY_ALLOWED_DOMAINS must be wired")
    ports = {port["containerPort"] for port in container.get("ports") or []}
    if ports != GATEWAY_PORTS:
        problems.append(f"the gateway must listen on {sorted(GATEWAY_PORTS)}, not {ports}")
    return problems


def test_the_agent_job_meets_the_hardening_contract(documents: list[Document]) -> None:
    assert agent_violations(documents) == []


def test_the_gateway_meets_the_hardening_contract(documents: list[Document]) -> None:
    assert gateway_violations(documents) == []


def test_the_agent_env_names_the_gateway_service_and_its_ports(documents: list[Document]) -> None:
    service = find(documents, "Service", GATEWAY_NAME)
    # The variable Kubernetes derives from the Service's name, as the agent's env spells it.
    host_variable = service["metadata"]["name"].upper().replace("-", "_") + "_SERVICE_HOST"
    assert f"$({host_variable})" == GATEWAY_HOST
    ports = {port["name"]: port for port in service["spec"]["ports"]}
    assert ports["model-api"]["port"] == MODEL_API_PORT
    assert ports["egress-proxy"]["port"] == EGRESS_PROXY_PORT
    # Same numbers on the pods, which is what the NetworkPolicies match after translation.
    container_ports = {
        port["name"]: port["containerPort"]
        for port in the_container(gateway_pod(documents))["ports"]
    }
    for port in ports.values():
        assert container_ports[port["targetPort"]] == port["port"]
    gateway_labels = find(documents, "Deployment", GATEWAY_NAME)["spec"]["template"]["metadata"]
    assert selector_matches({"matchLabels": service["spec"]["selector"]}, gateway_labels["labels"])


def add_init_container(documents: list[Document], security_context: dict[str, Any]) -> None:
    agent_pod(documents)["initContainers"] = [
        {"name": "setup", "image": "busybox", "securityContext": security_context}
    ]


def container_context(documents: list[Document]) -> dict[str, Any]:
    return the_container(agent_pod(documents))["securityContext"]


def pod_context(documents: list[Document]) -> dict[str, Any]:
    return agent_pod(documents)["securityContext"]


def env_entry(documents: list[Document], name: str) -> dict[str, Any]:
    (entry,) = (e for e in the_container(agent_pod(documents))["env"] if e["name"] == name)
    return entry


def add_env(documents: list[Document], entry: dict[str, Any]) -> None:
    the_container(agent_pod(documents))["env"].append(entry)


def add_volume(documents: list[Document], volume: dict[str, Any], mount_path: str) -> None:
    agent_pod(documents)["volumes"].append(volume)
    the_container(agent_pod(documents))["volumeMounts"].append(
        {"name": volume["name"], "mountPath": mount_path}
    )


def volume_named(documents: list[Document], name: str) -> dict[str, Any]:
    (volume,) = (v for v in agent_pod(documents)["volumes"] if v["name"] == name)
    return volume


def limits(documents: list[Document]) -> dict[str, Any]:
    return the_container(agent_pod(documents))["resources"]["limits"]


SECRET_ENV = {"name": "GITHUB_TOKEN", "valueFrom": {"secretKeyRef": {"name": "gh", "key": "t"}}}

# (what is weakened, how, a phrase the report must contain)
AGENT_MUTATIONS: list[tuple[str, Mutation, str]] = [
    ("runAsNonRoot removed", lambda d: pod_context(d).pop("runAsNonRoot"), "runAsNonRoot"),
    ("runAsNonRoot false", lambda d: pod_context(d).update(runAsNonRoot=False), "runAsNonRoot"),
    ("runAsUser root", lambda d: pod_context(d).update(runAsUser=0), "runAsUser"),
    ("runAsUser removed", lambda d: pod_context(d).pop("runAsUser"), "runAsUser"),
    (
        "container overrides runAsUser",
        lambda d: container_context(d).update(runAsUser=0),
        "runAsUser must be 1000, is 0",
    ),
    ("runAsGroup root", lambda d: pod_context(d).update(runAsGroup=0), "runAsGroup"),
    ("fsGroup removed", lambda d: pod_context(d).pop("fsGroup"), "fsGroup"),
    (
        "seccomp removed",
        lambda d: pod_context(d).pop("seccompProfile"),
        "seccompProfile",
    ),
    (
        "seccomp Unconfined",
        lambda d: pod_context(d).update(seccompProfile={"type": "Unconfined"}),
        "seccompProfile",
    ),
    (
        "container overrides seccomp",
        lambda d: container_context(d).update(seccompProfile={"type": "Unconfined"}),
        "seccompProfile",
    ),
    (
        "SELinux super-privileged type",
        lambda d: container_context(d).update(seLinuxOptions={"type": "spc_t"}),
        "seLinuxOptions",
    ),
    (
        "AppArmor unconfined",
        lambda d: container_context(d).update(appArmorProfile={"type": "Unconfined"}),
        "appArmorProfile",
    ),
    (
        "AppArmor unconfined for the whole pod",
        lambda d: pod_context(d).update(appArmorProfile={"type": "Unconfined"}),
        "appArmorProfile",
    ),
    (
        "AppArmor unconfined by annotation",
        lambda d: find(d, "Job", AGENT_NAME)["spec"]["template"]["metadata"].update(
            annotations={f"{APPARMOR_ANNOTATION}agent": "unconfined"}
        ),
        "agent: appArmorProfile unconfined",
    ),
    (
        "readOnlyRootFilesystem false",
        lambda d: container_context(d).update(readOnlyRootFilesystem=False),
        "readOnlyRootFilesystem",
    ),
    (
        "readOnlyRootFilesystem removed",
        lambda d: container_context(d).pop("readOnlyRootFilesystem"),
        "readOnlyRootFilesystem",
    ),
    (
        "allowPrivilegeEscalation true",
        lambda d: container_context(d).update(allowPrivilegeEscalation=True),
        "allowPrivilegeEscalation",
    ),
    (
        "allowPrivilegeEscalation removed",
        lambda d: container_context(d).pop("allowPrivilegeEscalation"),
        "allowPrivilegeEscalation",
    ),
    ("privileged", lambda d: container_context(d).update(privileged=True), "privileged"),
    (
        "capabilities not dropped",
        lambda d: container_context(d).pop("capabilities"),
        "capabilities.drop",
    ),
    (
        "only some capabilities dropped",
        lambda d: container_context(d)["capabilities"].update(drop=["NET_RAW"]),
        "capabilities.drop",
    ),
    (
        "a capability added",
        lambda d: container_context(d)["capabilities"].update(add=["NET_ADMIN"]),
        "capabilities.add",
    ),
    (
        "procMount Unmasked",
        lambda d: container_context(d).update(procMount="Unmasked"),
        "procMount",
    ),
    (
        "unhardened init container",
        lambda d: add_init_container(d, {}),
        "setup: readOnlyRootFilesystem",
    ),
    (
        "privileged init container",
        lambda d: add_init_container(
            d, {**container_context(d), "privileged": True, "allowPrivilegeEscalation": True}
        ),
        "setup: privileged",
    ),
    (
        "API token mounted",
        lambda d: agent_pod(d).update(automountServiceAccountToken=True),
        "automountServiceAccountToken",
    ),
    (
        "API token left to the default",
        lambda d: agent_pod(d).pop("automountServiceAccountToken"),
        "automountServiceAccountToken",
    ),
    (
        "ServiceAccount mounts a token",
        lambda d: find(d, "ServiceAccount", AGENT_NAME).update(automountServiceAccountToken=True),
        "ServiceAccount",
    ),
    ("hostNetwork", lambda d: agent_pod(d).update(hostNetwork=True), "hostNetwork"),
    ("hostPID", lambda d: agent_pod(d).update(hostPID=True), "hostPID"),
    ("hostIPC", lambda d: agent_pod(d).update(hostIPC=True), "hostIPC"),
    (
        "shared process namespace",
        lambda d: agent_pod(d).update(shareProcessNamespace=True),
        "shareProcessNamespace",
    ),
    (
        "a sysctl",
        lambda d: pod_context(d).update(sysctls=[{"name": "net.core.somaxconn", "value": "1"}]),
        "sysctls",
    ),
    (
        "hostPort",
        lambda d: the_container(agent_pod(d)).update(ports=[{"containerPort": 22, "hostPort": 22}]),
        "hostPort",
    ),
    (
        "hostPath volume",
        lambda d: add_volume(d, {"name": "docker", "hostPath": {"path": "/var/run"}}, "/run/d"),
        "hostPath",
    ),
    (
        "secret volume",
        lambda d: add_volume(d, {"name": "key", "secret": {"secretName": GATEWAY_SECRET}}, "/k"),
        "credential",
    ),
    (
        "projected API token",
        lambda d: add_volume(
            d,
            {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
            "/var/run/token",
        ),
        "credential",
    ),
    ("secret env", lambda d: add_env(d, SECRET_ENV), "credential"),
    (
        "secret envFrom",
        lambda d: the_container(agent_pod(d)).update(envFrom=[{"secretRef": {"name": "all"}}]),
        "credential",
    ),
    (
        "real-looking API key",
        lambda d: env_entry(d, "ANTHROPIC_API_KEY").update(value="sk-ant-api03-abc"),
        "ANTHROPIC_API_KEY",
    ),
    (
        "OAuth token",
        lambda d: add_env(d, {"name": "CLAUDE_CODE_OAUTH_TOKEN", "value": "sk-ant-oat01-x"}),
        "CLAUDE_CODE_OAUTH_TOKEN",
    ),
    (
        "base URL elsewhere",
        lambda d: env_entry(d, "ANTHROPIC_BASE_URL").update(value="https://attacker.example"),
        "ANTHROPIC_BASE_URL",
    ),
    (
        "proxy removed",
        lambda d: the_container(agent_pod(d))["env"].remove(env_entry(d, "HTTPS_PROXY")),
        "HTTPS_PROXY",
    ),
    (
        "gateway bypassed for the model API",
        lambda d: env_entry(d, "no_proxy").update(value="*"),
        "no_proxy",
    ),
    (
        "/tmp sizeLimit removed",
        lambda d: volume_named(d, "tmp")["emptyDir"].pop("sizeLimit"),
        "sizeLimit",
    ),
    (
        "/tmp sizeLimit raised",
        lambda d: volume_named(d, "tmp")["emptyDir"].update(sizeLimit="10Gi"),
        "/tmp: emptyDir sizeLimit",
    ),
    (
        "HOME sizeLimit removed",
        lambda d: volume_named(d, "home")["emptyDir"].pop("sizeLimit"),
        f"{AGENT_HOME}: emptyDir sizeLimit",
    ),
    (
        "HOME on disk",
        lambda d: volume_named(d, "home")["emptyDir"].pop("medium"),
        "medium Memory",
    ),
    (
        "HOME unmounted",
        lambda d: the_container(agent_pod(d))["volumeMounts"].pop(),
        "writable mounts",
    ),
    (
        "another writable path",
        lambda d: add_volume(
            d, {"name": "bin", "emptyDir": {"sizeLimit": "1Mi"}}, "/usr/local/bin"
        ),
        "writable mounts",
    ),
    (
        "workspace read-only",
        lambda d: the_container(agent_pod(d))["volumeMounts"][0].update(readOnly=True),
        WORKSPACE,
    ),
    (
        "cluster DNS",
        lambda d: [agent_pod(d).pop("dnsConfig"), agent_pod(d).update(dnsPolicy="ClusterFirst")],
        "DNS",
    ),
    (
        "service links off",
        lambda d: agent_pod(d).update(enableServiceLinks=False),
        "enableServiceLinks",
    ),
    ("memory limit removed", lambda d: limits(d).pop("memory"), "limits.memory"),
    ("memory limit raised", lambda d: limits(d).update(memory="8Gi"), "limits.memory"),
    ("CPU limit removed", lambda d: limits(d).pop("cpu"), "limits.cpu"),
    (
        "ephemeral storage unbounded",
        lambda d: limits(d).pop("ephemeral-storage"),
        "ephemeral-storage",
    ),
    (
        "retried runs",
        lambda d: find(d, "Job", AGENT_NAME)["spec"].update(backoffLimit=6),
        "backoffLimit",
    ),
    (
        "no deadline",
        lambda d: find(d, "Job", AGENT_NAME)["spec"].pop("activeDeadlineSeconds"),
        "activeDeadlineSeconds",
    ),
]


def gateway_context(documents: list[Document]) -> dict[str, Any]:
    return the_container(gateway_pod(documents))["securityContext"]


def gateway_volume(documents: list[Document], name: str) -> dict[str, Any]:
    (volume,) = (v for v in gateway_pod(documents)["volumes"] if v["name"] == name)
    return volume


def gateway_mount(documents: list[Document], path: str) -> dict[str, Any]:
    container = the_container(gateway_pod(documents))
    (mount,) = (m for m in container["volumeMounts"] if m["mountPath"] == path)
    return mount


def key_in_env(documents: list[Document]) -> None:
    the_container(gateway_pod(documents))["env"] = [
        {
            "name": "ANTHROPIC_API_KEY",
            "valueFrom": {"secretKeyRef": {"name": GATEWAY_SECRET, "key": GATEWAY_SECRET_KEY}},
        }
    ]


GATEWAY_MUTATIONS: list[tuple[str, Mutation, str]] = [
    (
        "runs as root",
        lambda d: gateway_pod(d)["securityContext"].update(runAsUser=0),
        "runAsUser must be 1100",
    ),
    (
        "runs as the agent's UID",
        lambda d: gateway_pod(d)["securityContext"].update(runAsUser=AGENT_UID),
        "runAsUser must be 1100",
    ),
    ("privileged", lambda d: gateway_context(d).update(privileged=True), "privileged"),
    (
        "writable root",
        lambda d: gateway_context(d).update(readOnlyRootFilesystem=False),
        "readOnlyRootFilesystem",
    ),
    (
        "capability added",
        lambda d: gateway_context(d)["capabilities"].update(add=["NET_BIND_SERVICE"]),
        "capabilities.add",
    ),
    (
        "seccomp removed",
        lambda d: gateway_pod(d)["securityContext"].pop("seccompProfile"),
        "seccompProfile",
    ),
    (
        "API token mounted",
        lambda d: gateway_pod(d).update(automountServiceAccountToken=True),
        "automountServiceAccountToken",
    ),
    (
        "/tmp unbounded",
        lambda d: gateway_volume(d, "tmp")["emptyDir"].pop("sizeLimit"),
        "sizeLimit",
    ),
    (
        "credentials writable",
        lambda d: gateway_mount(d, "/run/secrets/agentgate").update(readOnly=False),
        "read-only",
    ),
    ("key in the environment", key_in_env, "not the environment"),
    (
        "key file elsewhere",
        lambda d: the_container(gateway_pod(d))["env"][0].update(value="/tmp/key"),
        "ANTHROPIC_API_KEY_FILE",
    ),
    (
        "another Secret",
        lambda d: gateway_volume(d, "credentials")["secret"].update(secretName="other"),
        "ANTHROPIC_API_KEY_FILE",
    ),
    (
        "node path",
        lambda d: gateway_pod(d)["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "hostPath",
    ),
    (
        "allowlist unwired",
        lambda d: the_container(gateway_pod(d))["env"].pop(),
        "GATEWAY_ALLOWED_DOMAINS",
    ),
]


def test_the_quantity_parser_reads_what_the_manifests_use() -> None:
    assert quantity("256Mi") == 256 * 2**20
    assert quantity("1Gi") == 2**30
    assert quantity("500m") == Fraction(1, 2)
    assert quantity("2") == 2
    assert quantity("1.5G") == 1_500_000_000
    with pytest.raises(ValueError, match="quantity"):
        quantity("256MB")


# --- 3. network policy --------------------------------------------------------------------

AGENT_IP = "10.244.1.20"
GATEWAY_IP = "10.244.1.30"


def namespace_labels(documents: list[Document]) -> dict[str, str]:
    return find(documents, "Namespace", NAMESPACE)["metadata"].get("labels") or {}


def pod_of(documents: list[Document], kind: str, name: str, ip: str) -> Pod:
    """The pod a Job or Deployment creates, with the labels its template gives it."""
    document = find(documents, kind, name)
    return Pod(
        namespace=document["metadata"]["namespace"],
        labels=document["spec"]["template"]["metadata"]["labels"],
        ip=ip,
        namespace_labels=namespace_labels(documents),
    )


# What must happen to a connection. A denial is checked at the end whose policy is meant to
# deny it, on its own: otherwise the other end's isolation would hide a weakened rule (an
# agent allowed to reach every pod would still look contained while every pod refused it).
Verdict = Literal["connects", "source refuses", "destination refuses"]
Expectation = tuple[str, Pod | External, Pod | External, int, Protocol, Verdict]


def expected_connections(documents: list[Document]) -> list[Expectation]:
    """(what, from, to, port, protocol, verdict) for the connections that matter."""
    agent = pod_of(documents, "Job", AGENT_NAME, AGENT_IP)
    gateway = pod_of(documents, "Deployment", GATEWAY_NAME, GATEWAY_IP)
    another_agent = Pod(NAMESPACE, agent.labels, "10.244.1.21", agent.namespace_labels)
    unlabelled = Pod(NAMESPACE, {"app": "debug"}, "10.244.1.40", agent.namespace_labels)
    kube_dns = Pod("kube-system", {"k8s-app": "kube-dns"}, "10.244.0.5")
    elsewhere_gateway = Pod("default", gateway.labels, "10.244.2.30")
    elsewhere_agent = Pod("default", agent.labels, "10.244.2.20")
    web = Pod("default", {"app": "web"}, "10.244.2.10")
    internet = External("203.0.113.7")
    metadata = External("169.254.169.254")
    model_api, proxy = MODEL_API_PORT, EGRESS_PROXY_PORT
    out, refused = "source refuses", "destination refuses"
    return [
        ("agent -> gateway model API", agent, gateway, model_api, "TCP", "connects"),
        ("agent -> gateway forward proxy", agent, gateway, proxy, "TCP", "connects"),
        ("agent -> gateway ssh", agent, gateway, 22, "TCP", out),
        ("agent -> gateway other port", agent, gateway, 8443, "TCP", out),
        ("agent -> gateway UDP", agent, gateway, model_api, "UDP", out),
        ("agent -> cluster DNS (UDP)", agent, kube_dns, 53, "UDP", out),
        ("agent -> cluster DNS (TCP)", agent, kube_dns, 53, "TCP", out),
        ("agent -> another agent", agent, another_agent, model_api, "TCP", out),
        ("agent -> unlabelled pod beside it", agent, unlabelled, model_api, "TCP", out),
        ("agent -> gateway-labelled pod elsewhere", agent, elsewhere_gateway, proxy, "TCP", out),
        ("agent -> pod in another namespace", agent, web, 80, "TCP", out),
        ("agent -> internet HTTPS", agent, internet, 443, "TCP", out),
        ("agent -> internet HTTP", agent, internet, 80, "TCP", out),
        ("agent -> internet on the gateway's ports", agent, internet, proxy, "TCP", out),
        ("agent -> kube API VIP", agent, External("10.96.0.1"), 443, "TCP", out),
        ("agent -> kube API server", agent, External("172.18.0.2"), 6443, "TCP", out),
        ("agent -> cloud metadata", agent, metadata, 80, "TCP", out),
        ("agent -> IPv6 internet", agent, External("2001:db8::1"), 443, "TCP", out),
        ("internet -> agent", internet, agent, 22, "TCP", refused),
        ("gateway -> agent", gateway, agent, model_api, "TCP", refused),
        ("another agent -> agent", another_agent, agent, model_api, "TCP", refused),
        ("gateway -> internet HTTPS", gateway, internet, 443, "TCP", "connects"),
        ("gateway -> internet HTTP", gateway, internet, 80, "TCP", "connects"),
        ("gateway -> cluster DNS (UDP)", gateway, kube_dns, 53, "UDP", "connects"),
        ("gateway -> cluster DNS (TCP)", gateway, kube_dns, 53, "TCP", "connects"),
        ("gateway -> cloud metadata", gateway, metadata, 80, "TCP", out),
        ("gateway -> internet SMTP", gateway, internet, 25, "TCP", out),
        ("gateway -> internet ssh", gateway, internet, 22, "TCP", out),
        ("gateway -> pod in another namespace", gateway, web, 8080, "TCP", out),
        ("unlabelled pod -> gateway", unlabelled, gateway, model_api, "TCP", refused),
        ("pod elsewhere -> gateway", web, gateway, proxy, "TCP", refused),
        ("foreign agent label -> gateway", elsewhere_agent, gateway, proxy, "TCP", refused),
        ("internet -> gateway proxy", internet, gateway, proxy, "TCP", refused),
        ("unlabelled pod -> internet", unlabelled, internet, 443, "TCP", out),
    ]


def verdict_of(
    policies: list[Document],
    source: Pod | External,
    destination: Pod | External,
    port: int,
    protocol: Protocol,
) -> set[Verdict]:
    """Every verdict that holds for this connection under these policies."""
    verdicts: set[Verdict] = set()
    if connection_allowed(policies, source, destination, port, protocol):
        verdicts.add("connects")
    if isinstance(source, Pod) and not egress_allowed(
        policies, source, destination, port, protocol
    ):
        verdicts.add("source refuses")
    if isinstance(destination, Pod) and not ingress_allowed(
        policies, source, destination, port, protocol
    ):
        verdicts.add("destination refuses")
    return verdicts


def network_violations(documents: list[Document]) -> list[str]:
    policies = network_policies(documents)
    problems = []
    for what, source, destination, port, protocol, expected in expected_connections(documents):
        if expected not in verdict_of(policies, source, destination, port, protocol):
            problems.append(f"{what} ({protocol} {port}): expected {expected!r}, it does not")
    return problems


def test_the_network_policies_allow_exactly_the_gateway_paths(documents: list[Document]) -> None:
    assert network_violations(documents) == []


def agent_policy(documents: list[Document]) -> dict[str, Any]:
    return find(documents, "NetworkPolicy", AGENT_NAME)["spec"]


def gateway_policy(documents: list[Document]) -> dict[str, Any]:
    return find(documents, "NetworkPolicy", GATEWAY_NAME)["spec"]


def drop_policies(documents: list[Document], *names: str) -> None:
    documents[:] = [
        d
        for d in documents
        if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"] in names)
    ]


DNS_RULE = {
    "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}

NETWORK_MUTATIONS: list[tuple[str, Mutation, str]] = [
    (
        "agent egress to every pod beside it",
        lambda d: agent_policy(d)["egress"][0]["to"][0].update(podSelector={}),
        "agent -> another agent",
    ),
    (
        "agent egress to any address",
        lambda d: agent_policy(d)["egress"][0]["to"].append({"ipBlock": {"cidr": "0.0.0.0/0"}}),
        "agent -> internet on the gateway's ports",
    ),
    (
        "agent egress on every gateway port",
        lambda d: agent_policy(d)["egress"][0].pop("ports"),
        "agent -> gateway ssh",
    ),
    (
        "agent allowed DNS",
        lambda d: agent_policy(d)["egress"].append(DNS_RULE),
        "agent -> cluster DNS",
    ),
    (
        "agent egress not isolated",
        lambda d: [
            agent_policy(d).update(policyTypes=["Ingress"]),
            find(d, "NetworkPolicy", "agentgate-default-deny")["spec"].update(
                policyTypes=["Ingress"]
            ),
        ],
        "agent -> internet HTTPS",
    ),
    (
        "no policy for agents at all",
        lambda d: drop_policies(d, AGENT_NAME, "agentgate-default-deny"),
        "agent -> internet HTTPS",
    ),
    (
        "no namespace default deny",
        lambda d: drop_policies(d, "agentgate-default-deny"),
        "unlabelled pod -> internet",
    ),
    (
        "agent ingress open",
        lambda d: [
            drop_policies(d, "agentgate-default-deny"),
            agent_policy(d).update(policyTypes=["Egress"]),
        ],
        "internet -> agent",
    ),
    (
        "agent policy selects a misspelt label",
        lambda d: agent_policy(d)["podSelector"].update(matchLabels={NAME_LABEL: "agentgate-agnt"}),
        "agent -> gateway model API",
    ),
    (
        "Job pods lose the agent label",
        lambda d: find(d, "Job", AGENT_NAME)["spec"]["template"]["metadata"].update(labels={}),
        "agent -> gateway model API",
    ),
    (
        "gateway open to every pod",
        lambda d: gateway_policy(d)["ingress"][0].pop("from"),
        "unlabelled pod -> gateway",
    ),
    (
        "gateway open to agent-labelled pods of any namespace",
        lambda d: gateway_policy(d)["ingress"][0]["from"][0].update(namespaceSelector={}),
        "foreign agent label -> gateway",
    ),
    (
        "gateway reaches the metadata service",
        lambda d: gateway_policy(d)["egress"][0]["to"][0]["ipBlock"].pop("except"),
        "gateway -> cloud metadata",
    ),
    (
        "gateway egress on every port",
        lambda d: gateway_policy(d)["egress"][0].pop("ports"),
        "gateway -> internet SMTP",
    ),
    (
        "gateway egress to every pod",
        lambda d: gateway_policy(d)["egress"].append({"to": [{"namespaceSelector": {}}]}),
        "gateway -> pod in another namespace",
    ),
    (
        "gateway without DNS",
        lambda d: gateway_policy(d)["egress"].pop(),
        "gateway -> cluster DNS",
    ),
]


# Properties over every address, port and protocol, beyond the table above: generated pods
# carry the labels the policies look at (and others) in the namespaces that matter.
AGENT = pod_of(MANIFESTS, "Job", AGENT_NAME, AGENT_IP)
GATEWAY = pod_of(MANIFESTS, "Deployment", GATEWAY_NAME, GATEWAY_IP)
POLICIES = network_policies(MANIFESTS)
METADATA_RANGE = ipaddress.ip_network("169.254.0.0/16")

label_sets = st.dictionaries(
    st.sampled_from([NAME_LABEL, "app", "k8s-app"]),
    st.sampled_from([AGENT_NAME, GATEWAY_NAME, "kube-dns", "web", ""]),
    max_size=2,
)
pods = st.builds(
    Pod,
    namespace=st.sampled_from([NAMESPACE, "default", "kube-system"]),
    labels=label_sets,
    ip=st.ip_addresses().map(str),
)
endpoints = st.one_of(pods, st.builds(External, ip=st.ip_addresses().map(str)))
# Random ports alone would almost never hit the few that policies name; mix those in.
ports = st.one_of(
    st.sampled_from([22, 25, 53, 80, 443, EGRESS_PROXY_PORT, 6443, MODEL_API_PORT]),
    st.integers(min_value=1, max_value=65535),
)
KUBE_DNS = Pod("kube-system", {"k8s-app": "kube-dns"}, "10.244.0.5")
ANOTHER_AGENT = Pod(NAMESPACE, AGENT.labels, "10.244.1.21")
protocols = st.sampled_from(["TCP", "UDP", "SCTP"])


def is_pod_named(endpoint: Pod | External, name: str, namespace: str = NAMESPACE) -> bool:
    return (
        isinstance(endpoint, Pod)
        and endpoint.namespace == namespace
        and endpoint.labels.get(NAME_LABEL) == name
    )


@given(destination=endpoints, port=ports, protocol=protocols)
@example(destination=GATEWAY, port=MODEL_API_PORT, protocol="TCP")
@example(destination=GATEWAY, port=EGRESS_PROXY_PORT, protocol="TCP")
@example(destination=KUBE_DNS, port=53, protocol="UDP")
def test_an_agent_reaches_the_gateway_ports_and_nothing_else(
    destination: Pod | External, port: int, protocol: Protocol
) -> None:
    expected = (
        is_pod_named(destination, GATEWAY_NAME) and protocol == "TCP" and port in GATEWAY_PORTS
    )
    assert egress_allowed(POLICIES, AGENT, destination, port, protocol) is expected


@given(source=endpoints, port=ports, protocol=protocols)
@example(source=GATEWAY, port=MODEL_API_PORT, protocol="TCP")
@example(source=ANOTHER_AGENT, port=MODEL_API_PORT, protocol="TCP")
def test_nothing_connects_to_an_agent(
    source: Pod | External, port: int, protocol: Protocol
) -> None:
    assert not ingress_allowed(POLICIES, source, AGENT, port, protocol)


@given(source=endpoints, port=ports, protocol=protocols)
@example(source=AGENT, port=MODEL_API_PORT, protocol="TCP")
@example(source=AGENT, port=EGRESS_PROXY_PORT, protocol="TCP")
@example(source=ANOTHER_AGENT, port=22, protocol="TCP")
def test_only_agents_connect_to_the_gateway(
    source: Pod | External, port: int, protocol: Protocol
) -> None:
    expected = is_pod_named(source, AGENT_NAME) and protocol == "TCP" and port in GATEWAY_PORTS
    assert ingress_allowed(POLICIES, source, GATEWAY, port, protocol) is expected


@given(destination=endpoints, port=ports, protocol=protocols)
@example(destination=External("203.0.113.7"), port=443, protocol="TCP")
@example(destination=External("169.254.169.254"), port=80, protocol="TCP")
@example(destination=KUBE_DNS, port=53, protocol="UDP")
@example(destination=AGENT, port=MODEL_API_PORT, protocol="TCP")
def test_the_gateway_reaches_web_ports_and_cluster_dns_only(
    destination: Pod | External, port: int, protocol: Protocol
) -> None:
    address = ipaddress.ip_address(destination.ip)
    web = (
        protocol == "TCP"
        and port in {80, 443}
        and address.version == 4
        and address not in METADATA_RANGE
    )
    dns = (
        isinstance(destination, Pod)
        and destination.namespace == "kube-system"
        and destination.labels.get("k8s-app") == "kube-dns"
        and port == 53
        and protocol in {"TCP", "UDP"}
    )
    assert egress_allowed(POLICIES, GATEWAY, destination, port, protocol) is (web or dns)


# --- every check can fail -----------------------------------------------------------------


def weakened(
    check: Callable[[list[Document]], list[str]], mutations: list[tuple[str, Mutation, str]]
) -> list[Any]:
    return [
        pytest.param(check, mutate, expected, id=f"{check.__name__}: {what}")
        for what, mutate, expected in mutations
    ]


@pytest.mark.parametrize(
    ("check", "mutate", "expected"),
    [
        *weakened(newest_schema_errors, SCHEMA_MUTATIONS),
        *weakened(reference_errors, REFERENCE_MUTATIONS),
        *weakened(agent_violations, AGENT_MUTATIONS),
        *weakened(gateway_violations, GATEWAY_MUTATIONS),
        *weakened(network_violations, NETWORK_MUTATIONS),
    ],
)
def test_a_weakened_manifest_is_reported(
    documents: list[Document],
    check: Callable[[list[Document]], list[str]],
    mutate: Mutation,
    expected: str,
) -> None:
    mutate(documents)
    problems = check(documents)
    assert any(expected in problem for problem in problems), problems
