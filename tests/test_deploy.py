"""The deployment files: the compose file is valid, and the image installs the
project the way the README says."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_compose_file_is_valid() -> None:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed (make test installs it)"
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_compose_waits_for_a_healthy_database() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "condition: service_healthy" in text
    assert "pg_isready" in text
    assert re.search(r"^volumes:\n  pgdata:", text, re.M)


def _pip_installs(text: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"pip install ([^\n&]+)", text)]


def test_dockerfile_installs_like_the_readme() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    readme = (ROOT / "README.md").read_text()
    readme_section = readme.split("## Install without make", 1)[1].split("##", 1)[0]
    assert _pip_installs(dockerfile) == ["."]
    assert "." in _pip_installs(readme_section)


def test_dockerfile_runs_as_non_root_with_healthcheck_and_graceful_shutdown() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") >= 2
    assert "-slim" in dockerfile
    assert re.search(r"^USER agentd$", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    assert "--timeout-graceful-shutdown" in dockerfile
    assert '"uvicorn", "app.main:app"' in dockerfile


def test_every_way_to_serve_uses_the_batch_accept_loop() -> None:
    """The Dockerfile, `make run`, the README's install steps and the benchmark
    serve agentd on app.serving's loop."""
    flag = "--loop app.serving:new_event_loop"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert '"--loop", "app.serving:new_event_loop"' in dockerfile
    assert flag in (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    assert flag in readme.split("## Install without make", 1)[1].split("##", 1)[0]
    assert '"app.serving:new_event_loop"' in (ROOT / "bench" / "procs.py").read_text()


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme.split("##", 1)[0]
    assert re.search(r"^make test$", ci, re.M)


def test_compose_runs_two_replicas_on_one_database() -> None:
    binary = shutil.which("docker-compose")
    assert binary
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config = result.stdout
    urls = re.findall(r"DATABASE_URL: (\S+)", config)
    assert len(urls) == 2 and len(set(urls)) == 1
    assert "8000:8000" in config.replace('"', "") or "published: 8000" in config


def test_the_image_and_compose_log_json_lines() -> None:
    assert re.search(r"^\s+LOG_FORMAT=json$", (ROOT / "Dockerfile").read_text(), re.M)
    assert re.search(r"^\s+LOG_FORMAT: json$", (ROOT / "docker-compose.yml").read_text(), re.M)
