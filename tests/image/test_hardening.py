"""The hardened run of issue 5 and what the image filesystem must not contain."""

from __future__ import annotations

import time
from pathlib import Path

from imagekit import HARDENED, Containers, bind, exec_in, logs_of, wait_healthy

# Inspections that must see every directory (/root is 0700) run as root with the entrypoint
# bypassed: the entrypoint would drop to agentgate, which cannot read everything.
AS_ROOT = {"user": "0:0", "entrypoint": ["bash", "-c"]}


def test_hardened_run_end_to_end(containers: Containers, workspace: Path, image) -> None:
    script = """
        set -eux
        cd /workspace
        git init -q -b main
        echo hello > README
        git add README
        git commit -q -m "first commit"
        git log --format=%an:%s
        node -e 'require("fs").writeFileSync("/workspace/from-node", String(6*7))'
        cat from-node; echo
        claude --version
    """
    result = containers.run(["bash", "-c", script], volumes=bind(workspace), **HARDENED)
    assert result.code == 0, str(result)
    lines = result.stdout.splitlines()
    assert lines[0] == "AgentGate Agent:first commit"
    assert lines[1] == "42"
    pinned = image.labels["io.agentgate.image.claude-code-version"]
    assert lines[2].startswith(f"{pinned} "), lines
    assert (workspace / ".git" / "HEAD").is_file()
    assert (workspace / "from-node").stat().st_uid == 1000


def test_only_workspace_and_tmpfs_are_writable(containers: Containers, workspace: Path) -> None:
    # 1. On the root filesystem and at mount points (-xdev): exactly the three mounts.
    # 2. Everything below every mount, except /proc and /sys: these are kernel interfaces
    #    whose "writable" entries are per-process state (/proc/self/*) or are mounted
    #    read-only by Docker, not storage; walking them is slow and racy.
    #    In /dev, device nodes (/dev/null, /dev/tty...) and the /dev/std* symlinks are
    #    writable by design; /dev/shm and /dev/mqueue are Docker's per-container IPC mounts
    #    (nosuid,nodev,noexec, 64 MiB), present in every container, not part of the image.
    script = r"""
        echo '== xdev'
        find / -xdev -writable 2>/dev/null | sort
        echo '== all'
        find / \( -path /proc -o -path /sys \) -prune -o -writable -print 2>/dev/null \
            | grep -Ev '^/(workspace|tmp|home/agentgate)(/|$)' \
            | while read -r path; do
                [ -c "$path" ] || [ -L "$path" ] || echo "$path"
              done | sort
        echo '== end'
    """
    result = containers.run(["bash", "-c", script], volumes=bind(workspace), **HARDENED)
    assert result.code == 0, str(result)
    out = result.stdout
    assert "== end" in out, str(result)
    xdev = out.split("== xdev\n")[1].split("== all\n")[0].split()
    rest = out.split("== all\n")[1].split("== end")[0].split()
    assert xdev == ["/home/agentgate", "/tmp", "/workspace"], str(result)
    assert set(rest) <= {"/dev/shm", "/dev/mqueue"}, f"writable outside the mounts: {rest}"


def test_keep_alive_exec_and_fast_stop(containers: Containers, workspace: Path) -> None:
    container = containers.start(volumes=bind(workspace), **HARDENED)
    wait_healthy(container)  # the entrypoint has handed over to the keep-alive
    code, out = exec_in(container, 'id -un; id -u; pwd; echo "$HOME"; touch /workspace/x')
    assert code == 0, out
    assert out.split() == ["agentgate", "1000", "/workspace", "/home/agentgate"]
    assert (workspace / "x").exists()
    # tini is PID 1, the keep-alive is its only child, no shell left in between.
    code, out = exec_in(
        container,
        "cat /proc/1/comm; read -r child _ </proc/1/task/1/children; cat /proc/$child/comm",
    )
    assert out.split() == ["tini", "sleep"], out

    started = time.monotonic()
    container.stop(timeout=10)
    elapsed = time.monotonic() - started
    container.reload()
    assert elapsed < 2, f"docker stop took {elapsed:.1f}s\n{logs_of(container)}"
    assert container.attrs["State"]["ExitCode"] == 143, container.attrs["State"]


def test_no_setuid_or_setgid_files(containers: Containers) -> None:
    # The planted file proves that the search finds setuid files at all.
    script = """
        cp /bin/true /var/tmp/planted && chmod u+s /var/tmp/planted
        find / -xdev -type f -perm /6000 2>/dev/null | sort
    """
    result = containers.run([script], **AS_ROOT)
    assert result.stdout.split() == ["/var/tmp/planted"], str(result)


def test_no_package_manager_caches(containers: Containers) -> None:
    script = """
        ls -A /var/lib/apt/lists 2>/dev/null | sed 's|^|/var/lib/apt/lists/|'
        ls -A /var/cache/apk 2>/dev/null | sed 's|^|/var/cache/apk/|'
        ls -d /var/cache/apt/*.bin /root/.npm /home/agentgate/.npm /root/.cache \
            /home/agentgate/.cache /usr/local/share/.cache 2>/dev/null
        echo end
    """
    result = containers.run([script], **AS_ROOT)
    assert result.stdout.split() == ["end"], str(result)


def test_no_shell_history(containers: Containers) -> None:
    script = r"""
        find / -xdev \( -name '.*_history' -o -name .lesshst -o -name .viminfo \) 2>/dev/null
        echo end
    """
    result = containers.run([script], **AS_ROOT)
    assert result.stdout.split() == ["end"], str(result)


def test_user_ids_and_no_sudo(containers: Containers, image) -> None:
    assert image.attrs["Config"]["User"] in {"1000", "1000:1000"}
    script = """
        getent passwd agentgate | cut -d: -f3,4,6,7
        getent group agentgate | cut -d: -f3
        getent passwd 1000 | cut -d: -f1
        getent passwd node || echo no-node-user
        command -v sudo su-exec doas gosu || echo no-escalation-tools
    """
    result = containers.run([script], **AS_ROOT)
    assert result.code == 0, str(result)
    assert result.stdout.split() == [
        "1000:1000:/home/agentgate:/bin/bash",
        "1000",
        "agentgate",
        "no-node-user",
        "no-escalation-tools",
    ], str(result)
