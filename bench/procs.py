"""Processes the benchmark starts and watches: the fake model, the uvicorn
targets (pinned to their core), /proc readings (CPU time, peak RSS) and the
throwaway PostgreSQL database."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin(pid: int, cpu: int | None) -> None:
    """Pin a process and every thread it has to one core."""
    if cpu is None:
        return
    tasks = Path(f"/proc/{pid}/task")
    ids = [int(t.name) for t in tasks.iterdir()] if tasks.exists() else [pid]
    for tid in ids:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(tid, {cpu})


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu() -> tuple[float, float]:
    """CPU seconds all cores spent busy, and stolen by the hypervisor (/proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq) / TICKS, steal / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss(pid: int) -> bool:
    """Restart VmHWM from the current RSS (Linux: `5` into clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every running `postgres` process (the server is not ours
    to pin; this shows what it spent)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(
    url: str, body: bytes | None = None, timeout: float = 10.0, key: str = ""
) -> tuple[int, bytes]:
    """A blocking request for set-up steps (never inside a measured pass)."""
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    request.add_header("content-type", "application/json")
    if key:
        request.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, grace: float = 15.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGINT)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_fake(log: Path, cpu: int | None) -> tuple[Proc, int]:
    """The fake model in its own process; returns it and its port."""
    return _start_listening("fake", "bench.fake", log, cpu)


def start_sink(log: Path, cpu: int | None) -> tuple[Proc, int]:
    """The OTLP sink (`--tracing`) in its own process; returns it and its port."""
    return _start_listening("otlp-sink", "bench.otlp_sink", log, cpu)


def _start_listening(name: str, module: str, log: Path, cpu: int | None) -> tuple[Proc, int]:
    """A `python -m module --port 0` that prints `listening <port>` once it is."""
    args = [sys.executable, "-m", module, "--port", "0"]
    if cpu is not None:
        args += ["--cpu", str(cpu)]
    popen = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=log.open("wb"))
    assert popen.stdout is not None
    line = popen.stdout.readline().decode()
    if not line.startswith("listening"):
        popen.kill()
        raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}")
    return Proc(name, popen, log), int(line.split()[1])


# How agentd is served (the Makefile and the Dockerfile say the same); the floor
# keeps uvicorn's default loop.
AGENTD_LOOP = "app.serving:new_event_loop"


def start_uvicorn(
    name: str,
    app: str,
    env: dict[str, str],
    log: Path,
    cpu: int | None,
    ready_path: str,
    loop: str | None = None,
    root: Path = ROOT,
) -> tuple[Proc, int]:
    """A uvicorn process with one worker and no access log, pinned to `cpu`;
    `loop` is uvicorn's `--loop` (None: its default, uvloop). It imports `app`
    from the checkout at `root` (its working directory, first on PYTHONPATH),
    with this interpreter and its packages."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
        "--timeout-graceful-shutdown",
        "5",
        "--backlog",
        "4096",
        *(["--loop", loop] if loop else []),
    ]
    # Tracing is what `env` says (`--tracing`), never what this shell has in OTEL_*.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full_env = served_from(root, {**inherited, **env})
    popen = subprocess.Popen(
        args, cwd=root, env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    pin(popen.pid, cpu)
    proc = Proc(name, popen, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited at start-up:\n{proc.log_tail()}")
        with contextlib.suppress(OSError):
            if http_json(f"http://127.0.0.1:{port}{ready_path}", timeout=2)[0] == 200:
                pin(popen.pid, cpu)  # threads started meanwhile (aiosqlite, ...)
                return proc, port
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"{name} was not ready within 90 s:\n{proc.log_tail()}")


def served_from(root: Path, env: dict[str, str]) -> dict[str, str]:
    """`env` with `root` first on PYTHONPATH, once checked that a process started
    with it in `root` imports its `app` package from there (and not, say, from
    the checkout the virtualenv was installed from)."""
    paths = [str(root), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**env, "PYTHONPATH": os.pathsep.join(paths)}
    probe = [sys.executable, "-c", "import app; print(app.__file__)"]
    found = subprocess.run(probe, cwd=root, env=env, capture_output=True, text=True)
    imported = Path(found.stdout.strip()).resolve()
    if found.returncode != 0 or not imported.is_relative_to(root.resolve()):
        raise RuntimeError(
            f"a server started in {root} would import app from {imported or '?'} "
            f"({found.stderr.strip()[-300:]})"
        )
    return env


async def create_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
