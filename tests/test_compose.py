"""Container files: compose.yaml and the Dockerfile agree with each other and with Settings."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from bot.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "compose.yaml"
REPLICAS_COMPOSE = REPO / "compose.replicas.yaml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
BASE_IMAGE = "python:3.11-slim-bookworm"
REPLICAS = ("bot-a", "bot-b")
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


@dataclass
class Stage:
    """One build stage of the Dockerfile: its base image and its instructions in order."""

    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        """The argument text of every instruction with this keyword."""
        return [text for key, text in self.instructions if key == keyword]

    def env(self) -> dict[str, str]:
        """Every ``ENV`` of the stage, later ones winning."""
        values: dict[str, str] = {}
        for text in self.args("ENV"):
            for word in shlex.split(text):
                name, _, value = word.partition("=")
                values[name] = value
        return values


def _dockerfile() -> list[Stage]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append(Stage(base=rest.split()[0]))
        elif stages:
            stages[-1].instructions.append((keyword, " ".join(rest.split())))
    return stages


def _runtime() -> Stage:
    return _dockerfile()[-1]


def _words(text: str) -> list[str]:
    """An instruction's arguments, in JSON (exec) form or as plain words."""
    if text.startswith("["):
        words: list[str] = json.loads(text)
        return words
    return text.split()


def _compose(path: Path = COMPOSE) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def _services(path: Path = COMPOSE) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose(path)["services"]
    return services


def _all_services() -> dict[str, dict[str, Any]]:
    """The services of both compose files (their names do not overlap)."""
    return {**_services(COMPOSE), **_services(REPLICAS_COMPOSE)}


def _bot_services() -> dict[str, dict[str, Any]]:
    """Every service, in either file, that runs the image built from the Dockerfile."""
    return {name: s for name, s in _all_services().items() if "build" in s}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _interpolate(value: str, variables: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        return variables.get(match["name"]) or match["default"] or ""

    return _VARIABLE.sub(replace, value)


def _mounts(service: dict[str, Any]) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = []
    for item in service.get("volumes") or []:
        if isinstance(item, dict):
            mounts.append(item)
            continue
        parts = str(item).split(":")
        source = parts[0]
        mounts.append(
            {
                "type": "bind" if source.startswith((".", "/", "~")) else "volume",
                "source": source,
                "target": parts[1],
                "read_only": len(parts) > 2 and "ro" in parts[2].split(","),
            }
        )
    return mounts


def _container_ports(service: dict[str, Any]) -> list[int]:
    ports: list[int] = []
    for item in service.get("ports") or []:
        if isinstance(item, dict):
            ports.append(int(item["target"]))
        else:
            ports.append(int(str(item).split(":")[-1].split("/")[0]))
    return ports


def _host_ports(service: dict[str, Any]) -> list[str]:
    hosts: list[str] = []
    for item in service.get("ports") or []:
        if isinstance(item, dict):
            hosts.append(f"{item.get('host_ip', '')}:{item['published']}")
        else:
            hosts.append(str(item).rsplit(":", 1)[0])
    return hosts


def _replica_settings(service: str) -> Settings:
    env = _environment(_services(REPLICAS_COMPOSE)[service])
    values = {k.lower(): _interpolate(v, {"POSTGRES_PASSWORD": "pw"}) for k, v in env.items()}
    return load_settings(ENV_EXAMPLE, **values)


def test_dockerfile_every_stage_from_slim_bookworm() -> None:
    """Every build stage starts from python:3.11-slim-bookworm."""
    stages = _dockerfile()
    assert len(stages) >= 2
    assert {stage.base for stage in stages} == {BASE_IMAGE}


def test_dockerfile_runtime_user_is_fixed_non_root_uid() -> None:
    """The runtime stage ends as a fixed, numeric, non-root user."""
    user = _runtime().args("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert not gid or int(gid) != 0


def test_dockerfile_exposes_settings_default_port() -> None:
    """EXPOSE names the port the service listens on by default."""
    exposed = [int(p.split("/")[0]) for text in _runtime().args("EXPOSE") for p in text.split()]
    assert exposed == [Settings.model_fields["port"].default] == [8080]


def test_dockerfile_healthcheck_asks_healthz_with_python() -> None:
    """The HEALTHCHECK asks /healthz with Python (slim images have no curl)."""
    (check,) = _runtime().args("HEALTHCHECK")
    command = _words(check.split(" CMD ", 1)[1])
    assert command[0] == "python"
    assert "/healthz" in command[-1]
    assert "curl" not in check


def test_dockerfile_runs_practice_bot_serve() -> None:
    """The entrypoint is the console script and the default command serves."""
    runtime = _runtime()
    assert _words(runtime.args("ENTRYPOINT")[-1]) == ["practice-bot"]
    assert _words(runtime.args("CMD")[-1]) == ["serve"]
    assert runtime.args("STOPSIGNAL") == ["SIGTERM"]


def test_dockerfile_database_lives_in_data_volume() -> None:
    """The default DATABASE_URL is an absolute SQLite path inside the declared VOLUME."""
    runtime = _runtime()
    (volume,) = [v for text in runtime.args("VOLUME") for v in _words(text)]
    url = runtime.env()["DATABASE_URL"]
    assert url.startswith("sqlite:////")
    assert PurePosixPath(url.removeprefix("sqlite:///")).parent == PurePosixPath(volume)


def test_dockerfile_env_names_are_settings_fields_or_python() -> None:
    """Every ENV of the runtime stage is a Settings field or a Python / PATH variable."""
    names = set(_runtime().env())
    unknown = {n for n in names if n.lower() not in Settings.model_fields}
    assert unknown <= {"PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
    assert {"TEMPLATES_DIR", "DATABASE_URL"} <= names


def test_compose_bot_environment_names_are_settings_fields() -> None:
    """Every variable compose sets on a bot service is a field of Settings."""
    for name, service in _bot_services().items():
        unknown = [k for k in _environment(service) if k.lower() not in Settings.model_fields]
        assert unknown == [], name


def test_compose_bot_services_read_env_file() -> None:
    """Every bot service takes the practice's configuration from .env."""
    for name, service in _bot_services().items():
        env_file = service["env_file"]
        assert (env_file if isinstance(env_file, list) else [env_file]) == [".env"], name


def test_compose_bot_ports_target_service_port() -> None:
    """Published ports reach the container's 8080, the PORT it is told to listen on."""
    for name, service in _bot_services().items():
        port = _environment(service).get("PORT", "8080")
        assert _container_ports(service) == [int(port)] == [8080], name


def test_compose_bot_ports_published_on_loopback_only() -> None:
    """Bot ports are bound to 127.0.0.1: the TLS reverse proxy is the only way in."""
    for name, service in _bot_services().items():
        assert all(h.startswith("127.0.0.1:") for h in _host_ports(service)), name


def test_compose_replica_ports_do_not_collide_with_bot() -> None:
    """The single bot and the two replicas publish different host ports."""
    hosts = [h for s in _bot_services().values() for h in _host_ports(s)]
    assert len(hosts) == len(set(hosts)) == 3


def test_compose_data_volume_targets_dockerfile_volume() -> None:
    """The bot's named volume is mounted on the Dockerfile's VOLUME."""
    (volume,) = [v for text in _runtime().args("VOLUME") for v in _words(text)]
    named = [m for m in _mounts(_services()["bot"]) if m["type"] == "volume"]
    assert [m["target"] for m in named] == [volume]
    assert named[0]["source"] in _compose()["volumes"]


def test_compose_bot_database_url_inside_data_volume() -> None:
    """The single bot's SQLite file lies inside its persistent volume."""
    url = _environment(_services()["bot"]).get("DATABASE_URL", _runtime().env()["DATABASE_URL"])
    (volume,) = [v for text in _runtime().args("VOLUME") for v in _words(text)]
    assert PurePosixPath(url.removeprefix("sqlite:///")).parent == PurePosixPath(volume)


def test_compose_templates_mounted_writable_on_templates_dir() -> None:
    """Every bot service mounts ./templates where TEMPLATES_DIR points, writable: it is the
    live folder the manager's page saves to."""
    templates_dir = _runtime().env()["TEMPLATES_DIR"]
    for name, service in _bot_services().items():
        binds = [m for m in _mounts(service) if m["type"] == "bind"]
        assert [(_interpolate(m["source"], {}), m["target"], m["read_only"]) for m in binds] == [
            ("./templates", templates_dir, False)
        ], name
        assert _environment(service).get("TEMPLATES_DIR", templates_dir) == templates_dir


def test_compose_bot_services_leave_the_health_check_to_the_image() -> None:
    """No bot service declares a healthcheck: the image's HEALTHCHECK is the one (compose
    health checks break under podman-compose 1.0)."""
    for name, service in _bot_services().items():
        assert "healthcheck" not in service, name


def test_compose_postgres_healthcheck_uses_pg_isready() -> None:
    """PostgreSQL, whose image has no HEALTHCHECK, reports healthy once pg_isready answers."""
    test = _services(REPLICAS_COMPOSE)["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in " ".join(test)


def test_compose_files_use_no_profiles() -> None:
    """No service needs a profile (podman-compose 1.0 ignores them): one file, one set-up."""
    for name, service in _all_services().items():
        assert "profiles" not in service, name


def test_compose_single_file_runs_only_the_bot() -> None:
    """compose.yaml is the one-practice set-up: the bot and nothing else."""
    assert list(_services(COMPOSE)) == ["bot"]


def test_compose_replicas_file_runs_two_replicas_and_postgres() -> None:
    """compose.replicas.yaml holds the two replicas and their database."""
    assert sorted(_services(REPLICAS_COMPOSE)) == sorted([*REPLICAS, "postgres"])


# What a replica may set differently from the single bot: where its data and port are.
_PER_SET_UP = {"environment", "ports", "volumes", "depends_on"}


@pytest.mark.parametrize("replica", REPLICAS)
def test_compose_replica_hardened_like_the_single_bot(replica: str) -> None:
    """A replica runs the same image with the same hardening, restart and logging."""
    single = {k: v for k, v in _services(COMPOSE)["bot"].items() if k not in _PER_SET_UP}
    other = _services(REPLICAS_COMPOSE)[replica]
    assert {k: v for k, v in other.items() if k not in _PER_SET_UP} == single


def test_compose_postgres_image_is_16_with_named_volume() -> None:
    """PostgreSQL runs postgres:16 (fully named, as podman needs) in a named volume."""
    postgres = _services(REPLICAS_COMPOSE)["postgres"]
    assert postgres["image"] == "docker.io/library/postgres:16"
    (mount,) = _mounts(postgres)
    assert mount["type"] == "volume"
    assert mount["source"] in _compose(REPLICAS_COMPOSE)["volumes"]


@pytest.mark.parametrize("replica", REPLICAS)
def test_compose_replica_uses_shared_postgresql(replica: str) -> None:
    """Each replica's DATABASE_URL is the shared postgres service, and Settings accept it."""
    settings = _replica_settings(replica)
    assert settings.database_url == "postgresql://practicebot:pw@postgres:5432/practicebot"


@pytest.mark.parametrize("replica", REPLICAS)
def test_compose_replica_waits_for_healthy_postgres(replica: str) -> None:
    """Each replica starts only once postgres reports healthy."""
    depends = _services(REPLICAS_COMPOSE)[replica]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"


def test_compose_postgres_credentials_match_replica_url() -> None:
    """The database user, name and password variable match the replicas' URL."""
    env = _environment(_services(REPLICAS_COMPOSE)["postgres"])
    url = _environment(_services(REPLICAS_COMPOSE)["bot-a"])["DATABASE_URL"]
    user, database = env["POSTGRES_USER"], env["POSTGRES_DB"]
    assert url.startswith(f"postgresql://{user}:")
    assert url.endswith(f"@postgres:5432/{database}")
    assert "${POSTGRES_PASSWORD" in url
    assert env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")


def test_compose_bot_settings_load_with_example_env() -> None:
    """The single bot's compose environment over .env.example gives valid Settings."""
    env = _environment(_services()["bot"])
    settings = load_settings(ENV_EXAMPLE, **{k.lower(): v for k, v in env.items()})
    assert str(settings.templates_dir) == _runtime().env()["TEMPLATES_DIR"]
    assert settings.port == 8080


# -- podman-compose (Debian's 1.0.x) reads both files as the documentation says --------------

PODMAN_COMPOSE = shutil.which("podman-compose")
needs_podman_compose = pytest.mark.skipif(
    PODMAN_COMPOSE is None and os.environ.get("CI") != "true",
    reason="podman-compose is not installed (.ci/run installs it from Debian's packages)",
)


def _podman(*args: str) -> list[str]:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    return result.stdout.split()


def _podman_compose_up(tmp_path: Path, compose_file: Path) -> dict[str, list[str]]:
    """The ``podman run`` command lines ``podman-compose up -d`` would run, by container.

    ``--dry-run`` still creates the project's volumes and network; they are removed after.
    """
    assert PODMAN_COMPOSE is not None, "podman-compose is needed under CI"
    shutil.copy(compose_file, tmp_path / compose_file.name)
    (tmp_path / "templates").mkdir()
    env = ENV_EXAMPLE.read_text(encoding="utf-8") + "POSTGRES_PASSWORD=pc-test-pw\n"
    (tmp_path / ".env").write_text(env, encoding="utf-8")
    project = f"pbtest{secrets.token_hex(4)}"
    command = [PODMAN_COMPOSE, "-p", project, "-f", compose_file.name, "--dry-run"]
    try:
        result = subprocess.run(
            [*command, "up", "-d", "--no-build"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        label = f"label=io.podman.compose.project={project}"
        for kind in ("volume", "network"):
            names = _podman(kind, "ls", "-q", "--filter", label)
            if names:
                _podman(kind, "rm", *names)
    assert result.returncode == 0, result.stderr
    runs: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        if line.startswith("podman run "):
            words = shlex.split(line)
            name = next(w for w in words if w.startswith("--name=")).removeprefix("--name=")
            runs[name.removeprefix(f"{project}_").removesuffix("_1")] = words
    return runs


@needs_podman_compose
def test_podman_compose_up_starts_only_the_bot_with_the_image_health_check(
    tmp_path: Path,
) -> None:
    """podman-compose starts the single bot alone, leaving the health check to the image."""
    runs = _podman_compose_up(tmp_path, COMPOSE)
    assert list(runs) == ["bot"]
    assert not any(word.startswith("--healthcheck") for word in runs["bot"])


@needs_podman_compose
def test_podman_compose_up_replicas_file_starts_both_replicas_and_postgres(
    tmp_path: Path,
) -> None:
    """podman-compose starts the two replicas and PostgreSQL, with the password from .env."""
    runs = _podman_compose_up(tmp_path, REPLICAS_COMPOSE)
    assert sorted(runs) == ["bot-a", "bot-b", "postgres"]
    url = "DATABASE_URL=postgresql://practicebot:pc-test-pw@postgres:5432/practicebot"
    for replica in REPLICAS:
        assert url in runs[replica]
        assert not any(word.startswith("--healthcheck") for word in runs[replica])
    assert "--healthcheck-command" in runs["postgres"]
