"""Invariants of the Dockerfiles, .dockerignore and docker-compose.yml, read as text.

These hold for every variant and need no Docker: a regression here (a `# syntax=` line, a
shell-form ENTRYPOINT, a root USER, the scripts copied before the CLI) fails in milliseconds
instead of after a build.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile.agent"
GATEWAY_DOCKERFILE = REPO / "docker" / "Dockerfile.gateway"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE = REPO / "docker-compose.yml"

FS_CHANGING = {"RUN", "COPY", "ADD"}
MANAGED_DROP_INS = "/etc/claude-code/managed-settings.d/"


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.keyword} {self.args}"


def parse_dockerfile(text: str) -> list[Instruction]:
    """Logical instructions: continuation lines joined, comment lines dropped (as BuildKit)."""
    instructions: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1])
            continue
        buffer.append(stripped)
        logical = " ".join(part.strip() for part in buffer if part.strip())
        buffer = []
        keyword, _, args = logical.partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
    assert not buffer, "Dockerfile ends inside a continued instruction"
    return instructions


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1] :]


def stages(instructions: list[Instruction]) -> dict[str, list[Instruction]]:
    """name -> the stage's instructions, its FROM first."""
    found: dict[str, list[Instruction]] = {}
    current: list[Instruction] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            current = []
            words = ins.args.split()
            found[words[-1] if len(words) == 3 and words[1].upper() == "AS" else str(ins)] = current
        current.append(ins)
    return found


def lineage(instructions: list[Instruction]) -> list[Instruction]:
    """The final stage with every stage it builds on (default global ARGs substituted),
    oldest first: what an image of the default build is made of."""
    args = dict(
        ins.args.split("=", 1) for ins in instructions if ins.keyword == "ARG" and "=" in ins.args
    )
    named = stages(instructions)
    chain = final_stage(instructions)
    while True:
        parent = chain[0].args.split()[0]
        for name, value in args.items():
            parent = parent.replace("${" + name + "}", value)
        if parent not in named:
            return chain
        chain = named[parent] + chain


def flags_and_rest(args: str) -> tuple[dict[str, str], list[str]]:
    flags: dict[str, str] = {}
    words = shlex.split(args)
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    return flags, words


@pytest.fixture(scope="module")
def dockerfile_text() -> str:
    return DOCKERFILE.read_text()


@pytest.fixture(scope="module")
def runtime(dockerfile_text: str) -> list[Instruction]:
    return final_stage(parse_dockerfile(dockerfile_text))


# --- Dockerfile -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway_runtime() -> list[Instruction]:
    return final_stage(parse_dockerfile(GATEWAY_DOCKERFILE.read_text()))


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, GATEWAY_DOCKERFILE], ids=lambda p: p.name)
def test_no_syntax_directive(dockerfile: Path) -> None:
    # A `# syntax=` parser directive makes BuildKit pull a frontend image: fails offline.
    for number, line in enumerate(dockerfile.read_text().splitlines(), start=1):
        assert not re.match(r"^\s*#\s*syntax\s*=", line, re.IGNORECASE), (
            f"line {number}: {line!r} pulls a frontend image; the built-in frontend suffices"
        )


def test_entrypoint_is_tini_exec_form(runtime: list[Instruction]) -> None:
    entrypoints = [ins for ins in runtime if ins.keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1, entrypoints
    assert json.loads(entrypoints[0].args) == ["tini", "--", "agent-entrypoint.sh"]
    assert not [ins for ins in runtime if ins.keyword == "CMD"], "CMD would defeat keep-alive"


def test_healthcheck_has_start_interval_and_runs_the_script(runtime: list[Instruction]) -> None:
    checks = [ins for ins in runtime if ins.keyword == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    flags, rest = flags_and_rest(checks[0].args.split(" CMD ", 1)[0] + " CMD")
    assert "start-interval" in flags, f"{checks[0]}: new containers wait a whole interval"
    assert "start-period" in flags
    assert rest == ["CMD"]
    command = json.loads(checks[0].args.split(" CMD ", 1)[1])
    assert command == ["agent-healthcheck.sh"], command


def test_user_is_numeric_1000(runtime: list[Instruction]) -> None:
    users = [ins for ins in runtime if ins.keyword == "USER"]
    assert users, "the runtime stage never leaves root"
    # Numeric, so runAsNonRoot checks need no /etc/passwd.
    assert re.fullmatch(r"1000(:1000)?", users[-1].args), str(users[-1])


def _copy_sources(ins: Instruction) -> tuple[dict[str, str], list[str]]:
    flags, words = flags_and_rest(ins.args)
    return flags, words[:-1]


def test_layer_order_cli_then_scripts_last(runtime: list[Instruction]) -> None:
    cli = [
        i
        for i, ins in enumerate(runtime)
        if ins.keyword == "COPY" and _copy_sources(ins)[0].get("from") == "builder"
    ]
    assert len(cli) == 1, "the CLI should cross stages in exactly one COPY"
    scripts = {
        src: i
        for i, ins in enumerate(runtime)
        if ins.keyword == "COPY" and "from" not in _copy_sources(ins)[0]
        for src in _copy_sources(ins)[1]
    }
    assert set(scripts) == {
        "docker/agent-entrypoint.sh",
        "docker/agent-healthcheck.sh",
        "docker/claude-managed-settings.json",
    }
    assert cli[0] < min(scripts.values()), "the scripts change most: copy them after the CLI"
    last_fs = max(i for i, ins in enumerate(runtime) if ins.keyword in FS_CHANGING)
    assert last_fs == max(scripts.values()), (
        f"{runtime[last_fs]} changes the filesystem after the scripts are copied: editing a "
        "script would rebuild it"
    )


def test_system_packages_come_before_the_cli_pin(dockerfile_text: str) -> None:
    """A CLI bump must reuse the system-package layer: the pin (an ENV, part of every later
    RUN's cache key) is set after apt, the CLI copied after both."""
    chain = lineage(parse_dockerfile(dockerfile_text))
    system_packages = [
        i for i, ins in enumerate(chain) if ins.keyword == "RUN" and "git" in ins.args
    ]
    pin = [i for i, ins in enumerate(chain) if ins.args.startswith("CLAUDE_CODE_VERSION")]
    cli = [
        i for i, ins in enumerate(chain) if ins.keyword == "COPY" and "--from=builder" in ins.args
    ]
    assert system_packages, "no system-package RUN in the runtime's stages"
    assert pin, "the runtime's stages never set CLAUDE_CODE_VERSION"
    assert system_packages[-1] < pin[0] < cli[0], [str(chain[i]) for i in (*pin, *cli)]


def test_copies_single_files_only(runtime: list[Instruction]) -> None:
    for ins in runtime:
        if ins.keyword == "ADD":
            pytest.fail(f"{ins}: use COPY")
        if ins.keyword == "COPY" and "from" not in _copy_sources(ins)[0]:
            for src in _copy_sources(ins)[1]:
                assert src.startswith("docker/"), str(ins)
                assert not any(c in src for c in "*?["), f"{ins}: no globs, single files"


def test_ca_secret_used_only_by_a_run_that_mounts_it(dockerfile_text: str) -> None:
    instructions = parse_dockerfile(dockerfile_text)
    users = [ins for ins in instructions if "NODE_EXTRA_CA_CERTS" in ins.args]
    assert users, "NODE_EXTRA_CA_CERTS is how npm trusts the proxy CA; it disappeared"
    for ins in users:
        assert ins.keyword == "RUN", f"{ins}: the CA path must not persist in ENV/ARG"
        assert "--mount=type=secret,id=ca-certificates" in ins.args, str(ins)


def test_each_line_stage_hands_its_pin_to_the_builder_and_the_label(dockerfile_text: str) -> None:
    """The pin lives in the line stages only (ARG, overridable), passed on as an ENV that the
    builder installs and the label reports; no stage declares another default."""
    named = stages(parse_dockerfile(dockerfile_text))
    line_stages = {name: body for name, body in named.items() if re.fullmatch(r"node\d+", name)}
    assert line_stages, "no node<line> stage"
    for name, body in line_stages.items():
        # After the pin, a line may only add managed-settings drop-ins its CLI needs.
        assert [ins.keyword for ins in body[:3]] == ["FROM", "ARG", "ENV"], name
        assert body[2].args == "CLAUDE_CODE_VERSION=${CLAUDE_CODE_VERSION}", str(body[2])
        for ins in body[3:]:
            assert ins.keyword == "COPY", f"{name}: {ins}"
            assert ins.args.split()[-1].startswith(MANAGED_DROP_INS), f"{name}: {ins}"
    pins = re.findall(r"^ARG CLAUDE_CODE_VERSION=", dockerfile_text, re.MULTILINE)
    assert len(pins) == len(line_stages), "a CLAUDE_CODE_VERSION default outside a line stage"
    assert '"@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}"' in dockerfile_text
    assert 'claude-code-version="${CLAUDE_CODE_VERSION}"' in dockerfile_text


def test_cli_runs_quietly_by_env(runtime: list[Instruction]) -> None:
    env_text = " ".join(ins.args for ins in runtime if ins.keyword == "ENV")
    for name in (
        "DISABLE_TELEMETRY",
        "DISABLE_ERROR_REPORTING",
        "DISABLE_AUTOUPDATER",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        "NPM_CONFIG_UPDATE_NOTIFIER",
    ):
        assert re.search(rf"\b{name}=", env_text), f"ENV {name} is missing"
    assert re.search(r"\bGIT_TERMINAL_PROMPT=0\b", env_text)


def test_no_image_wide_home_or_cli_config_dir(runtime: list[Instruction]) -> None:
    """Each user's HOME comes from passwd: a root exec must not read the agent's dotfiles,
    and a root `claude` must not load settings the agent can write."""
    env_text = " ".join(ins.args for ins in runtime if ins.keyword == "ENV")
    for name in ("HOME", "CLAUDE_CONFIG_DIR", "BASH_ENV", "ENV", "GIT_CONFIG_GLOBAL"):
        assert not re.search(rf"(^|\s){name}=", env_text), f"ENV sets {name} for every user"


def test_provider_settings_come_from_the_container_environment_only(
    runtime: list[Instruction],
) -> None:
    env_text = " ".join(ins.args for ins in runtime if ins.keyword == "ENV")
    assert re.search(r"\bCLAUDE_CODE_PROVIDER_MANAGED_BY_HOST=1\b", env_text)


def test_no_system_wide_git_trust(dockerfile_text: str) -> None:
    """safe.directory in the system config made root's git run the agent's fsmonitor."""
    assert "git config --system" not in dockerfile_text
    assert "safe.directory" not in dockerfile_text


def test_managed_settings_are_installed_root_owned_and_read_only(
    runtime: list[Instruction],
) -> None:
    [copy] = [
        ins
        for ins in runtime
        if ins.keyword == "COPY" and "docker/claude-managed-settings.json" in ins.args
    ]
    flags, _ = _copy_sources(copy)
    assert flags.get("chmod") == "0644", str(copy)
    assert "chown" not in flags, "managed settings must stay root's"
    assert copy.args.split()[-1] == "/etc/claude-code/managed-settings.json"


def test_managed_settings_lock_out_repository_commands() -> None:
    managed = json.loads((REPO / "docker" / "claude-managed-settings.json").read_text())
    assert managed["allowManagedHooksOnly"] is True
    assert managed["allowManagedMcpServersOnly"] is True
    assert managed["allowedMcpServers"] == []
    for helper in (
        "apiKeyHelper",
        "awsAuthRefresh",
        "awsCredentialExport",
        "gcpAuthRefresh",
        "otelHeadersHelper",
        "proxyAuthHelper",
    ):
        assert managed[helper] == "", f"{helper} must be blanked so no settings file can set it"


def test_repository_permission_rules_are_closed_on_every_line(dockerfile_text: str) -> None:
    """A repository's permission rules count once the agent trusts /workspace in its own
    ~/.claude.json. The newer CLI ignores that record under
    CLAUDE_CODE_IGNORE_PERSISTED_TRUST=1 (image-wide); the default line's frozen CLI has no
    such switch, so its line stage adds allowManagedPermissionRulesOnly as a drop-in (on the
    newer CLI the key would drop --allowedTools too: docs/SECURITY.md)."""
    assert re.search(r"\bCLAUDE_CODE_IGNORE_PERSISTED_TRUST=1\b", dockerfile_text)
    assert "allowManagedPermissionRulesOnly" not in json.loads(
        (REPO / "docker" / "claude-managed-settings.json").read_text()
    ), "on the 2.1.33x CLI the key drops the operator's --allowedTools"
    drop_in = REPO / "docker" / "claude-managed-settings.d" / "permission-rules-only.json"
    assert json.loads(drop_in.read_text()) == {"allowManagedPermissionRulesOnly": True}
    stages = re.split(r"(?m)^FROM[ \t]", dockerfile_text)
    [default_line] = re.findall(r"(?m)^ARG NODE_VERSION=(\S+)$", dockerfile_text)
    [stage] = [s for s in stages if re.match(rf"\S+[ \t]+AS[ \t]+node{default_line}\s", s)]
    copy = re.search(r"(?m)^COPY --chmod=0644 (\S+) (\S+)$", stage)
    assert copy, "the default line's stage must copy the permission-rules-only drop-in"
    assert copy.groups() == (
        "docker/claude-managed-settings.d/permission-rules-only.json",
        "/etc/claude-code/managed-settings.d/permission-rules-only.json",
    )


# --- docker/Dockerfile.gateway --------------------------------------------------------------


def test_gateway_runs_its_supervisor_under_tini_as_uid_1100(gateway_runtime: list[Instruction]):
    (entrypoint,) = [ins for ins in gateway_runtime if ins.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint.args) == ["tini", "--", "gateway-entrypoint.sh"]
    users = [ins for ins in gateway_runtime if ins.keyword == "USER"]
    assert users, "the gateway never leaves root"
    assert users[-1].args == "1100:1100", str(users[-1])
    (check,) = [ins for ins in gateway_runtime if ins.keyword == "HEALTHCHECK"]
    assert "--start-interval=" in check.args, str(check)
    assert json.loads(check.args.split(" CMD ", 1)[1]) == ["gateway-healthcheck.sh"]


def test_gateway_builds_from_debian_slim_and_copies_single_files() -> None:
    instructions = parse_dockerfile(GATEWAY_DOCKERFILE.read_text())
    first = instructions[0]
    assert (first.keyword, first.args) == ("ARG", "BASE_IMAGE=debian:bookworm-slim"), str(first)
    for ins in instructions:
        assert ins.keyword != "ADD", f"{ins}: use COPY"
        if ins.keyword == "COPY":
            for src in _copy_sources(ins)[1]:
                assert src.startswith("docker/gateway/"), str(ins)
                assert not any(c in src for c in "*?["), f"{ins}: no globs, single files"


# --- .dockerignore --------------------------------------------------------------------------


def _dockerignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_dockerignore_is_an_allow_list() -> None:
    patterns = _dockerignore_patterns()
    assert patterns, ".dockerignore is empty: the whole repo would be sent to the builder"
    assert patterns[0] == "*", f"first pattern is {patterns[0]!r}; an allow-list starts with *"
    assert all(p.startswith("!") for p in patterns[1:]), patterns


def test_dockerignore_allows_exactly_what_the_dockerfiles_copy(
    dockerfile_text: str, runtime: list[Instruction], gateway_runtime: list[Instruction]
):
    # One build context serves both Dockerfiles, so the allow-list is the union of their COPYs
    # (the agent's runtime stage and its line stages' managed-settings drop-ins).
    line_stages = [
        body
        for name, body in stages(parse_dockerfile(dockerfile_text)).items()
        if re.fullmatch(r"node\d+", name)
    ]
    copied = {
        src
        for ins in [*runtime, *gateway_runtime, *(ins for body in line_stages for ins in body)]
        if ins.keyword == "COPY" and "from" not in _copy_sources(ins)[0]
        for src in _copy_sources(ins)[1]
    }
    allowed = {p[1:] for p in _dockerignore_patterns()[1:]}
    assert allowed == copied, f"allowed {sorted(allowed)} but the Dockerfiles copy {copied}"


# --- docker-compose.yml ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    assert COMPOSE.is_file(), f"{COMPOSE.name} is missing: it defines agent-builder and agent"
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_builder_service(compose: dict) -> None:
    builder = compose["services"]["agent-builder"]
    assert builder.get("profiles") == ["build"], "agent-builder must not start with `up`"
    assert builder.get("image") == "agentgate/agent:dev"
    build = builder.get("build")
    assert isinstance(build, dict), "agent-builder builds the image"
    assert build.get("dockerfile") == "docker/Dockerfile.agent"
    assert build.get("context", ".") in {".", "./"}


def test_compose_agent_is_hardened(compose: dict) -> None:
    agent = compose["services"]["agent"]
    assert agent.get("read_only") is True
    assert agent.get("cap_drop") == ["ALL"]
    assert "no-new-privileges:true" in agent.get("security_opt", [])
    assert str(agent.get("user")) == "1000:1000"
    assert not agent.get("privileged", False)
    assert not agent.get("cap_add"), agent.get("cap_add")
    pids = agent.get("pids_limit")
    assert isinstance(pids, int), pids
    assert 0 < pids <= 4096, pids
    assert agent.get("mem_limit"), "an agent without a memory limit can take the host down"


def short_volume(spec: str) -> tuple[str, str, str]:
    """Compose's short volume syntax SOURCE:TARGET[:MODE] -> (source, target, mode); a
    ${VAR:-default} source keeps its own colon."""
    source = re.match(r"(\$\{[^}]*\}|[^:]*)", spec)
    assert source, spec
    target, _, mode = spec[source.end() + 1 :].partition(":")
    return source.group(0), target, mode


@pytest.mark.parametrize(
    ("spec", "parts"),
    [
        ("${AGENT_WORKSPACE_DIR:-./workspace}:/workspace",
         ("${AGENT_WORKSPACE_DIR:-./workspace}", "/workspace", "")),
        ("./creds.json:/run/secrets/claude-credentials.json:ro",
         ("./creds.json", "/run/secrets/claude-credentials.json", "ro")),
    ],
)  # fmt: skip
def test_short_volume(spec: str, parts: tuple[str, str, str]) -> None:
    assert short_volume(spec) == parts


def test_compose_agent_writes_only_the_workspace_and_two_tmpfs(compose: dict) -> None:
    agent = compose["services"]["agent"]
    tmpfs = {entry.split(":", 1)[0] for entry in agent["tmpfs"]}
    assert tmpfs == {"/tmp", "/home/agentgate"}, agent["tmpfs"]
    volumes = [short_volume(v) if isinstance(v, str) else v for v in agent.get("volumes", [])]
    assert volumes == [("${AGENT_WORKSPACE_DIR:-./workspace}", "/workspace", "")], volumes


def test_compose_sandbox_is_given_no_credentials(compose: dict) -> None:
    """The gateway holds the key: the sandbox gets no secret, no credentials file mount (the
    image would read one at /run/secrets/claude-credentials.json) and no key in its
    environment but the placeholder the gateway replaces."""
    agent = compose["services"]["agent"]
    assert "secrets" not in agent, agent.get("secrets")
    for volume in agent.get("volumes", []):
        source, target, _ = short_volume(volume)
        assert "docker.sock" not in source, "the sandbox must never get the Docker socket"
        assert not target.startswith(("/run/secrets", "/home/agentgate")), volume
        assert "credentials" not in f"{source}{target}", volume
    env = agent["environment"]
    assert env["ANTHROPIC_API_KEY"] == "placeholder-the-gateway-injects-the-real-key"
    for name in ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN", "AGENT_CREDENTIALS_FILE"):
        assert name not in env, name
    assert "${" not in json.dumps(env), "a value of the caller's environment reaches the sandbox"


def test_compose_agent_healthcheck_is_the_images_own(
    compose: dict, runtime: list[Instruction]
) -> None:
    """AgentGate waits for healthy: compose runs the image's check script with the image's
    own timing (without `test` compose falls back silently; other timings would disagree
    with the image and the README)."""
    check = compose["services"]["agent"]["healthcheck"]
    (healthcheck,) = [ins for ins in runtime if ins.keyword == "HEALTHCHECK"]
    options, command = healthcheck.args.split(" CMD ", 1)
    flags, _ = flags_and_rest(options)
    timing = {name.replace("-", "_"): value for name, value in flags.items()}
    assert check == {
        "test": ["CMD", *json.loads(command)],
        **{name: int(value) if name == "retries" else value for name, value in timing.items()},
    }


def test_compose_agent_reaches_nothing_but_the_gateway(compose: dict) -> None:
    agent = compose["services"]["agent"]
    assert agent["networks"] == ["sandbox"], agent["networks"]
    sandbox = compose["networks"]["sandbox"]
    assert sandbox.get("internal") is True
    assert sandbox["driver_opts"]["com.docker.network.bridge.inhibit_ipv4"] == "true"
    gateway = compose["services"]["gateway"]
    assert set(gateway["networks"]) == {"sandbox", "egress"}
    assert "gateway" in gateway["networks"]["sandbox"]["aliases"]
    assert agent["depends_on"]["gateway"]["condition"] == "service_healthy"


def test_compose_sandbox_holds_a_placeholder_and_the_gateway_the_key(compose: dict) -> None:
    env = compose["services"]["agent"]["environment"]
    assert env["ANTHROPIC_BASE_URL"] == "http://gateway:8080"
    assert "${" not in env["ANTHROPIC_API_KEY"], "the sandbox must not get the caller's key"
    assert "CLAUDE_CODE_OAUTH_TOKEN" not in env
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        assert env[name] == "http://gateway:3128", name
    assert env["NO_PROXY"] == env["no_proxy"] == "gateway"
    gateway_env = compose["services"]["gateway"]["environment"]
    assert gateway_env["ANTHROPIC_API_KEY"] == "${ANTHROPIC_API_KEY:-}"


def test_compose_gateway_is_hardened(compose: dict) -> None:
    gateway = compose["services"]["gateway"]
    assert gateway.get("read_only") is True
    assert gateway.get("cap_drop") == ["ALL"]
    assert "no-new-privileges:true" in gateway.get("security_opt", [])
    assert not gateway.get("cap_add")
    assert gateway["build"]["dockerfile"] == "docker/Dockerfile.gateway"


def test_compose_tmpfs_mounts_are_size_bounded(compose: dict) -> None:
    """A tmpfs without size= may take half the host's memory."""
    for name in ("agent", "gateway"):
        for entry in compose["services"][name]["tmpfs"]:
            assert "size=" in entry, f"{name}: {entry}"
