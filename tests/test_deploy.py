"""The deployment files: the compose file is valid, and the image, `make` and the
README install the project from the one lock file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with only `env` set (no .env of the checkout read)."""
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed (make test installs it)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTD_", "JWT_"))}
    with tempfile.TemporaryDirectory() as empty:
        env_file = Path(empty) / ".env"
        env_file.touch()
        compose = str(ROOT / "docker-compose.yml")
        return subprocess.run(
            [binary, "-f", compose, "--env-file", str(env_file), "config"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**clean, **env},
        )


def test_compose_file_is_valid() -> None:
    result = compose_config(AGENTD_OPERATOR_KEY="k" * 64)
    assert result.returncode == 0, result.stderr


def test_compose_starts_only_with_the_operators_key() -> None:
    """The replicas serve clients outside their containers: a keyed setup or none."""
    keyed = compose_config(AGENTD_OPERATOR_KEY="k" * 64)
    assert keyed.stdout.count("API_KEYS: " + "k" * 64) == 2
    unkeyed = compose_config()
    assert unkeyed.returncode != 0
    assert "AGENTD_OPERATOR_KEY" in unkeyed.stderr


def test_compose_waits_for_a_healthy_database() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "condition: service_healthy" in text
    assert "pg_isready" in text
    assert re.search(r"^volumes:\n  pgdata:", text, re.M)


def _uv_syncs(text: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"(?:uv|\$\(UV\)) sync ([^\n&]+)", text)]


def test_dockerfile_makefile_and_readme_install_from_the_lock_file() -> None:
    """Each install is `uv sync --locked` (the pins of uv.lock, refused when they
    no longer match pyproject.toml), with one uv version; `make` reinstalls when
    uv.lock changes. Both compile bytecode at install, as pip does."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    readme_section = readme.split("## Install without make", 1)[1].split("##", 1)[0]

    assert "COPY pyproject.toml uv.lock ./" in dockerfile
    assert "UV_COMPILE_BYTECODE=1" in dockerfile
    assert _uv_syncs(dockerfile) == ["--locked --no-install-project", "--locked --no-editable"]
    assert _uv_syncs(makefile) == ["--quiet --locked --compile-bytecode --extra dev"]
    assert re.search(r"^\$\(VENV\)/\.installed: .*\buv\.lock\b", makefile, re.M)
    assert _uv_syncs(readme_section) == ["--locked"]
    for text in (dockerfile, makefile, readme_section):
        assert not re.search(r"pip install (-e )?['\"]?\.", text)

    uv_version = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M)
    assert uv_version
    assert "uv==$(UV_VERSION)" in makefile
    pins = set(re.findall(r"\buv==(\d\S*)", dockerfile + readme_section))
    assert pins == {uv_version.group(1)}


def test_lock_file_pins_every_dependency_within_its_bound() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    pinned = {canonicalize_name(p["name"]): p["version"] for p in lock["package"]}
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    assert declared
    for line in declared:
        requirement = Requirement(line)
        version = pinned.get(canonicalize_name(requirement.name))
        assert version, f"{requirement.name} is not in uv.lock: run `make lock`"
        assert requirement.specifier.contains(version), (line, version)


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
    result = compose_config(AGENTD_OPERATOR_KEY="k" * 64)
    assert result.returncode == 0, result.stderr
    config = result.stdout
    urls = re.findall(r"DATABASE_URL: (\S+)", config)
    assert len(urls) == 2 and len(set(urls)) == 1
    assert "8000:8000" in config.replace('"', "") or "published: 8000" in config


def test_the_image_and_compose_log_json_lines() -> None:
    assert re.search(r"^\s+LOG_FORMAT=json$", (ROOT / "Dockerfile").read_text(), re.M)
    assert re.search(r"^\s+LOG_FORMAT: json$", (ROOT / "docker-compose.yml").read_text(), re.M)
