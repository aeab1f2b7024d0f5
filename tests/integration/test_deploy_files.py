"""The deployment files say what the docs say: image, compose, dashboard, Kubernetes, CI.

Syntax is checked by the real tools in ``nox -s deploy`` (hadolint, actionlint, Compose,
kubernetes-validate, promtool). These tests check meaning: the image's invariants, that
compose's pieces point at each other, that every dashboard query and alert runs against
a real Prometheus scraping ctxfy's metrics, that the probes hit ctxfy's routes, and that
the configuration page lists every variable ctxfy reads.
"""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ctxfy.__about__ import __version__
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.metrics import PrometheusMetrics, build_prometheus_metrics
from ctxfy.server import build_http_app, build_server
from ctxfy.settings import Settings
from ctxfy.testing import free_tcp_port
from tests.conftest import ServeHttp
from tests.e2e.ctxfy_process import ctxfy_process

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "ctxfy.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"


def read(path: str) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


def load_yaml(path: str) -> Any:
    return yaml.safe_load(read(path))


def binary(name: str, package: str) -> str:
    """A system binary; its absence fails in CI and skips elsewhere."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{name} is required in CI (apt-get install {package})")
        pytest.skip(f"{name} is not installed (apt-get install {package})")
    return found


# --- Dockerfile and build context -----------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", read("Dockerfile"))
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def runtime_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    starts = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    return instructions[starts[-1] :]


def test_dockerfile_is_multi_stage_on_one_python_313_base() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert froms == ["${BASE_IMAGE} AS build", "${BASE_IMAGE} AS runtime"]
    base = next(rest for word, rest in instructions if word == "ARG" and "BASE_IMAGE" in rest)
    assert re.fullmatch(r"BASE_IMAGE=docker\.io/library/python:3\.13-slim(-\w+)?", base)


def test_runtime_stage_runs_ctxfy_as_a_fixed_non_root_user() -> None:
    stage = runtime_stage()
    users = [rest for word, rest in stage if word == "USER"]
    assert users == ["10001:10001"]  # numeric, so runAsNonRoot can verify it
    env = " ".join(rest for word, rest in stage if word == "ENV")
    assert "CTXFY_HOST=0.0.0.0" in env
    assert "CTXFY_DATA_DIR=/data" in env
    assert not re.search(r"(KEY|TOKEN|PASSWORD|SECRET)\w*=", env), "no secret in ENV"
    assert ("VOLUME", '["/data"]') in stage
    assert ("EXPOSE", "8000") in stage
    assert ("ENTRYPOINT", '["/opt/venv/bin/python", "-m", "ctxfy"]') in stage
    assert ("STOPSIGNAL", "SIGTERM") in stage


def test_runtime_stage_copies_only_the_venv_and_the_health_check() -> None:
    copies = [rest for word, rest in runtime_stage() if word in {"COPY", "ADD"}]
    assert copies == [
        "--from=build /opt/venv /opt/venv",
        "deploy/docker/healthcheck.py /opt/ctxfy/healthcheck.py",
    ]
    runs = " ".join(rest for word, rest in runtime_stage() if word == "RUN")
    assert "apt-get" not in runs
    assert "pip" not in runs


def test_healthcheck_runs_the_script_against_health() -> None:
    checks = [rest for word, rest in runtime_stage() if word == "HEALTHCHECK"]
    assert len(checks) == 1
    assert checks[0].endswith(
        'CMD ["/opt/venv/bin/python", "/opt/ctxfy/healthcheck.py", "/health"]'
    )
    assert "--interval=" in checks[0]
    assert "--timeout=" in checks[0]


def test_labels_carry_version_revision_and_source() -> None:
    labels = " ".join(rest for word, rest in runtime_stage() if word == "LABEL")
    for key, value in [
        ("version", "${VERSION}"),
        ("revision", "${REVISION}"),
        ("source", "${SOURCE}"),
        ("created", "${CREATED}"),
        ("licenses", "MIT"),
        ("base.name", "${BASE_IMAGE}"),
    ]:
        assert f'org.opencontainers.image.{key}="{value}"' in labels
    # Every ARG a label uses is declared in the runtime stage: an ARG from before the first
    # FROM is visible only in FROM lines, so the label would be empty.
    declared = {rest.partition("=")[0] for word, rest in runtime_stage() if word == "ARG"}
    used = set(re.findall(r"\$\{(\w+)\}", labels))
    assert used <= declared, f"not declared in the runtime stage: {sorted(used - declared)}"


def test_documented_build_commands_label_the_image_with_ctxfy_version() -> None:
    """``docker build`` and ``docker compose build`` as documented pass the real version."""
    assert compose()["services"]["ctxfy"]["build"]["args"]["VERSION"].startswith(
        "${CTXFY_VERSION:-"
    )
    commands = set()
    for path in ("docs/deployment.md", "compose.yaml", "Dockerfile"):
        found = re.findall(r"VERSION=\"\$\((sed -n '[^']*' [\w/.]+)\)\"", read(path))
        assert found, f"{path} shows no build command that passes the version"
        commands.update(found)
    for command in commands:
        printed = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        assert printed.strip() == __version__, command


def test_build_context_is_an_allow_list_of_what_the_dockerfile_copies() -> None:
    lines = [
        line.strip()
        for line in read(".dockerignore").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert not {"tests", ".git", ".venv", "bench", "docs"} & allowed
    sources = []
    for word, rest in dockerfile_instructions():
        if word == "COPY" and not rest.startswith("--from"):
            sources.extend(rest.split()[:-1])
    assert sources
    for source in sources:
        assert source in allowed or any(source.startswith(a + "/") for a in allowed), source
        assert (ROOT / source).exists(), source


def installed_extras(text: str) -> list[set[str]]:
    """The extras of each ``.[...]``/``ctxfy[...]`` a pip command in ``text`` installs."""
    return [set(extras.split(",")) for extras in re.findall(r'"(?:\.|ctxfy)\[([\w,]+)\]"', text)]


def test_the_image_installs_every_extra_and_the_constraints_script_agrees() -> None:
    # Every extra is a runtime feature switched on by configuration (Redis URLs,
    # OTEL_EXPORTER_OTLP_ENDPOINT): without it in the image, that configuration exits at start.
    extras = set(load_toml()["project"]["optional-dependencies"])
    assert {"redis", "otlp"} <= extras
    dockerfile = " ".join(rest for word, rest in dockerfile_instructions() if word == "RUN")
    assert installed_extras(dockerfile) == [extras, extras]  # the wheels, then the install
    assert installed_extras(read("scripts/update-image-constraints.sh")) == [extras]


def test_image_constraints_pin_every_runtime_dependency_within_its_range() -> None:
    pinned: dict[str, str] = {}
    for line in read("deploy/docker/constraints.txt").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[re.sub(r"[-_.]+", "-", name).lower()] = version
    project = load_toml()["project"]
    requirements = [
        *project["dependencies"],
        *(text for extra in project["optional-dependencies"].values() for text in extra),
    ]
    for text in requirements:
        requirement = Requirement(text)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pinned, f"{name} is not in deploy/docker/constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{name}=={pinned[name]} is outside {requirement.specifier}"
        )


def load_toml() -> dict[str, Any]:
    return tomllib.loads(read("pyproject.toml"))


# --- The health-check script -----------------------------------------------------------------


def health_app() -> Starlette:
    async def ok(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def down(_request: Request) -> Response:
        return PlainTextResponse("not ready", status_code=503)

    async def moved(_request: Request) -> Response:
        return RedirectResponse("/health")

    return Starlette(routes=[Route("/health", ok), Route("/down", down), Route("/moved", moved)])


async def run_healthcheck(port: int, path: str, host: str = "0.0.0.0") -> tuple[int, str]:
    script = ROOT / "deploy" / "docker" / "healthcheck.py"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        path,
        env={"CTXFY_HOST": host, "CTXFY_PORT": str(port), "PATH": os.environ.get("PATH", "")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, (out + err).decode()


async def test_healthcheck_passes_only_on_2xx(serve_http: ServeHttp) -> None:
    async with serve_http(health_app()) as base:
        port = int(base.rsplit(":", 1)[1])
        assert await run_healthcheck(port, "/health") == (
            0,
            f"GET http://127.0.0.1:{port}/health -> 200\n",
        )
        code, output = await run_healthcheck(port, "/down")
        assert (code, output.strip()) == (1, f"GET http://127.0.0.1:{port}/down -> 503")
        code, output = await run_healthcheck(port, "/moved")  # redirects are not followed
        assert (code, output.strip()) == (1, f"GET http://127.0.0.1:{port}/moved -> 307")
        assert (await run_healthcheck(port, "/health", host="127.0.0.1"))[0] == 0


async def test_healthcheck_fails_when_nothing_listens() -> None:
    code, output = await run_healthcheck(free_tcp_port(), "/health")
    assert code == 1
    assert "ConnectionRefusedError" in output


def test_container_smoke_runs_a_docker_like_read_only_root() -> None:
    """podman's ``--read-only`` adds writable /tmp, /var/tmp and /run; Docker's does not."""
    script = re.sub(r"\\\n", " ", read("scripts/container-smoke.sh"))
    runs = [line for line in script.splitlines() if re.search(r"podman run .*--read-only\b", line)]
    assert len(runs) == 2  # the one-off key container and the server
    for line in runs:
        assert "--read-only-tmpfs=false" in line, line


# --- compose.yaml ----------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml("compose.yaml")
    return data


def test_compose_runs_ctxfy_redis_prometheus_grafana_hardened() -> None:
    services = compose()["services"]
    assert set(services) == {"ctxfy", "redis", "prometheus", "grafana"}
    for name, service in services.items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
    ctxfy = services["ctxfy"]
    assert ctxfy["build"]["context"] == "."
    assert ctxfy["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_ctxfy_shares_keys_and_rate_limits_through_redis() -> None:
    env = compose()["services"]["ctxfy"]["environment"]
    assert env["CTXFY_KEY_STORE"].startswith("redis://redis:6379/")
    assert env["CTXFY_RATE_LIMIT_STORAGE"].startswith("redis://redis:6379/")
    assert env["CTXFY_KEY_STORE"] != env["CTXFY_RATE_LIMIT_STORAGE"]
    assert "CTXFY_AUTH" not in env  # keys stay required


def test_compose_publishes_ports_on_loopback_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_compose_bind_mounts_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)


def test_prometheus_scrapes_the_ctxfy_service_and_loads_the_alerts() -> None:
    config = load_yaml("deploy/prometheus/prometheus.yml")
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "ctxfy")
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["ctxfy:8000"]
    assert config["rule_files"] == ["alerts.yml"]
    mounts = compose()["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts


def compose_ctxfy_environment() -> dict[str, str]:
    """The compose ctxfy service's environment, each ``${NAME:-default}`` at its default."""
    environment = compose()["services"]["ctxfy"]["environment"]
    return {
        name: re.sub(r"\$\{[A-Za-z0-9_]+:-([^}]*)\}", r"\1", str(value))
        for name, value in environment.items()
    }


def prometheus_ctxfy_job() -> dict[str, Any]:
    config = load_yaml("deploy/prometheus/prometheus.yml")
    job: dict[str, Any] = next(j for j in config["scrape_configs"] if j["job_name"] == "ctxfy")
    return job


def test_prometheus_can_scrape_ctxfy_configured_as_in_compose(tmp_path: Path) -> None:
    """The real server, with compose's settings, answers Prometheus' scrapes of each target.

    Prometheus sends ``Host: <target>``; ctxfy checks it on ``/metrics`` once
    ``CTXFY_ALLOWED_HOSTS`` is set. Only the stores differ (no Redis here).
    """
    job = prometheus_ctxfy_job()
    targets = [target for group in job["static_configs"] for target in group["targets"]]
    assert targets
    # Prometheus sends no credentials, so ctxfy must serve /metrics without a key.
    assert not {"authorization", "basic_auth", "oauth2"} & set(job)
    environment = compose_ctxfy_environment()
    assert environment.get("CTXFY_METRICS_PUBLIC", "true").lower() != "false"
    assert environment["CTXFY_ALLOWED_HOSTS"]  # the guard is on, as in compose
    environment["CTXFY_KEY_STORE"] = f"sqlite:///{tmp_path / 'data' / 'ctxfy.db'}"
    environment["CTXFY_RATE_LIMIT_STORAGE"] = "memory://"
    with ctxfy_process(tmp_path, free_tcp_port(), **environment) as server:
        for target in targets:
            response = httpx.get(
                f"{server.base}{job['metrics_path']}", headers={"Host": target}, timeout=10
            )
            assert response.status_code == 200, (target, response.status_code, response.text)
            assert "http_server_request_duration_seconds" in response.text
        other = httpx.get(f"{server.base}/metrics", headers={"Host": "rebind.example"}, timeout=10)
        assert other.status_code == 421


def test_grafana_provisioning_matches_the_dashboard() -> None:
    datasource = load_yaml("deploy/grafana/provisioning/datasources/prometheus.yml")
    source = datasource["datasources"][0]
    assert source["url"] == "http://prometheus:9090"
    provider = load_yaml("deploy/grafana/provisioning/dashboards/ctxfy.yml")["providers"][0]
    mounts = compose()["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["current"]["value"] == source["uid"]


# --- The Grafana dashboard --------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def expressions() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def test_dashboard_panels_are_well_formed_and_do_not_overlap() -> None:
    data = dashboard()
    assert data["uid"] == "ctxfy-overview"
    ids = [panel["id"] for panel in data["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in data["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps at {(x, y)}"
                cells.add((x, y))
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [target["refId"] for target in panel["targets"]]
        assert refs, panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]
        assert panel["description"], panel["title"]


def test_dashboard_shows_what_operators_ask_for() -> None:
    exprs = expressions()

    def some(pattern: str) -> bool:
        return any(re.search(pattern, expr) for expr in exprs)

    assert some(r"sum by \(mcp_method_name\) \(rate\(mcp_server_operation_duration_seconds_count")
    for quantile in ("0.5", "0.95", "0.99"):
        assert some(
            rf"histogram_quantile\({quantile}, sum by \(le, mcp_method_name\) "
            r"\(rate\(mcp_server_operation_duration_seconds_bucket"
        ), f"p{quantile} by method"
    assert some(r"by \(le, gen_ai_prompt_name\)")  # latency by prompt
    assert some(r'error_type!=""')  # errors
    assert some(r"ctxfy_auth_failures_total")
    assert some(r"ctxfy_rate_limit_blocks_total")
    assert some(r"by \(le, gen_ai_request_model\) \(rate\(gen_ai_client_operation_duration")


def record_traffic(metrics: PrometheusMetrics) -> None:
    """One of every kind of sample the dashboard and the alerts query."""
    recorder = metrics.recorder
    recorder.record_operation(
        method="prompts/get", target_kind="prompt", target="prp", duration_s=0.002, error_type=None
    )
    recorder.record_operation(
        method="prompts/get",
        target_kind="prompt",
        target="context_stack",
        duration_s=0.004,
        error_type="-32602",
    )
    recorder.record_operation(
        method="tools/call",
        target_kind="tool",
        target="generate_context_stack",
        duration_s=1.5,
        error_type=None,
    )
    recorder.record_llm_call(model="fake-model", duration_s=1.2, error_type=None)
    recorder.record_llm_call(model="fake-model", duration_s=30.0, error_type="LLMTimeoutError")
    for status in (200, 401, 403, 429, 503):
        recorder.record_http(method="POST", route="/mcp", status=status, duration_s=0.001)
    recorder.count_auth_failure("invalid")
    recorder.count_rate_limited()
    recorder.count_validation_rejection("max_length")
    recorder.count_injection_flag("ignore_instructions")


async def test_dashboard_queries_only_series_ctxfy_exports() -> None:
    metrics = build_prometheus_metrics()
    try:
        record_traffic(metrics)
        exported = await scrape(metrics)
    finally:
        metrics.shutdown()
    names = set(re.findall(r"^([a-zA-Z_:][\w:]*)(?:\{| )", exported, re.MULTILINE))
    names.add("up")  # Prometheus' own, per target
    used = set()
    for expr in [*expressions(), *alert_expressions()]:
        used |= set(re.findall(r"\b([a-z_:][a-z0-9_:]*)\{", expr))
    assert used, "no metric found in the queries"
    assert used <= names, f"not exported by ctxfy: {sorted(used - names)}"


async def scrape(metrics: PrometheusMetrics) -> str:
    transport = httpx.ASGITransport(app=Starlette(routes=[metrics.route()]))
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
        return (await client.get("/metrics")).text


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real Prometheus on 127.0.0.1 (config written by the test); yields URL and config."""
    executable = binary("prometheus", "prometheus")
    port = free_tcp_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {}\n", encoding="utf-8")
    process = subprocess.Popen(
        [
            executable,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}", config
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def concrete(expr: str) -> str:
    """Replace Grafana's variables with what they mean for one Prometheus job."""
    return expr.replace("$__rate_interval", "30s").replace("$instance", ".*")


async def query(client: httpx.AsyncClient, base: str, expr: str) -> list[dict[str, Any]]:
    response = await client.get(f"{base}/api/v1/query", params={"query": expr})
    body = response.json()
    assert response.status_code == 200, (expr, body)
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def test_every_dashboard_query_and_alert_runs_on_real_prometheus(
    prometheus: tuple[str, Path], serve_http: ServeHttp
) -> None:
    base, config = prometheus
    metrics = build_prometheus_metrics()
    try:
        async with (
            serve_http(Starlette(routes=[metrics.route()])) as target,
            httpx.AsyncClient(timeout=10) as client,
        ):
            config.write_text(
                yaml.safe_dump(
                    {
                        "global": {"scrape_interval": "1s"},
                        "scrape_configs": [
                            {
                                "job_name": "ctxfy",
                                "metrics_path": "/metrics",
                                "static_configs": [{"targets": [target.removeprefix("http://")]}],
                            }
                        ],
                    }
                ),
                encoding="utf-8",
            )
            await wait_until_up(client, base)
            # Traffic between scrapes, so that every rate() has an increase to show.
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                record_traffic(metrics)
                await asyncio.sleep(0.5)
            for expr in expressions():
                assert await query(client, base, concrete(expr)), f"no data: {expr}"
            for expr in alert_expressions():
                await query(client, base, expr)  # valid PromQL over real series
    finally:
        metrics.shutdown()


async def wait_until_up(client: httpx.AsyncClient, base: str) -> None:
    deadline = time.monotonic() + 60
    reloaded = False
    while time.monotonic() < deadline:
        try:
            if not reloaded:
                reloaded = (await client.post(f"{base}/-/reload")).status_code == 200
            elif await query_up(client, base):
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.25)
    pytest.fail("Prometheus did not scrape the target within 60 s")


async def query_up(client: httpx.AsyncClient, base: str) -> bool:
    result = await query(client, base, 'up{job="ctxfy"} == 1')
    return bool(result)


# --- Kubernetes -------------------------------------------------------------------------------


def manifest(name: str) -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(f"deploy/kubernetes/{name}")
    return data


def test_deployment_probes_ctxfy_routes_on_the_http_port() -> None:
    container = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    for probe, path in [
        ("startupProbe", "/health"),
        ("livenessProbe", "/health"),
        ("readinessProbe", "/ready"),
    ]:
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]


def test_deployment_is_non_root_read_only_without_capabilities() -> None:
    pod = manifest("deployment.yaml")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    # The Service is named ctxfy: service links would set CTXFY_PORT=tcp://IP:8000.
    assert manifest("service.yaml")["metadata"]["name"] == "ctxfy"
    assert pod["enableServiceLinks"] is False
    container = pod["containers"][0]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert "/data" in mounts
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["CTXFY_HOST"] == "0.0.0.0"


def test_service_and_budget_select_the_deployment_pods() -> None:
    labels = manifest("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    service = manifest("service.yaml")["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == "http"
    budget = manifest("poddisruptionbudget.yaml")["spec"]["selector"]["matchLabels"]
    assert budget.items() <= labels.items()


def test_manifests_use_the_secret_and_configmap_they_define() -> None:
    container = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    sources = {next(iter(item)): next(iter(item.values()))["name"] for item in container["envFrom"]}
    assert sources == {
        "configMapRef": manifest("configmap.yaml")["metadata"]["name"],
        "secretRef": manifest("secret.example.yaml")["metadata"]["name"],
    }
    secret = manifest("secret.example.yaml")["stringData"]
    assert set(secret) == {"CTXFY_KEY_STORE", "CTXFY_RATE_LIMIT_STORAGE"}
    assert all(value.startswith("rediss://") for value in secret.values())
    kustomization = manifest("kustomization.yaml")
    assert "secret.example.yaml" not in kustomization["resources"]
    for resource in kustomization["resources"]:
        assert (ROOT / "deploy" / "kubernetes" / resource).exists()


def test_manifests_name_the_current_version() -> None:
    image = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(f":{__version__}")
    assert manifest("kustomization.yaml")["images"][0]["newTag"] == __version__


def first_key_commands() -> str:
    readme = read("deploy/kubernetes/README.md")
    match = re.search(r"```bash\n(.*?)```", readme, re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_first_admin_key_pod_gets_the_configmap_settings(tmp_path: Path) -> None:
    """The one-off pod of the README has the ConfigMap too, so its key honours the max TTL."""
    commands = first_key_commands()
    match = re.search(r"--overrides='([^']+)'", commands)
    assert match is not None
    container = json.loads(match.group(1))["spec"]["containers"][0]
    sources = {next(iter(item)): next(iter(item.values()))["name"] for item in container["envFrom"]}
    assert sources == {
        "configMapRef": manifest("configmap.yaml")["metadata"]["name"],
        "secretRef": manifest("secret.example.yaml")["metadata"]["name"],
    }
    lines = commands.splitlines()
    # Like the Deployment's pods: no CTXFY_PORT=tcp://... service link for the Service ctxfy.
    assert json.loads(match.group(1))["spec"]["enableServiceLinks"] is False
    applied = next(i for i, line in enumerate(lines) if "deploy/kubernetes/configmap.yaml" in line)
    run = next(i for i, line in enumerate(lines) if line.startswith("kubectl -n ctxfy run "))
    assert applied < run, "the ConfigMap must exist before the pod that reads it"
    # The pod's command, with the pod's environment (the Secret's Redis store made local).
    environment = {
        **manifest("configmap.yaml")["data"],
        "CTXFY_KEY_STORE": f"sqlite:///{tmp_path / 'ctxfy.db'}",
        "CTXFY_DATA_DIR": str(tmp_path),
        "PATH": os.environ.get("PATH", ""),
    }
    assert environment["CTXFY_KEY_MAX_TTL"]
    created = subprocess.run(
        [sys.executable, "-m", "ctxfy", *container["args"], "--json"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(created.stdout)["expires_at"], "the first admin key never expires"


ENVIRONMENT_HOSTS = {"staging": "ctxfy.staging.example.com", "production": "ctxfy.example.com"}
IN_CLUSTER_HOSTS = ("ctxfy.ctxfy.svc", "ctxfy.ctxfy.svc.cluster.local")


def render_environment(environment: str) -> list[dict[str, Any]]:
    """The manifests ``kubectl apply -k deploy/environments/<environment>`` would apply."""
    overlay = ROOT / "deploy" / "environments" / environment
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text(encoding="utf-8"))
    for reference in [*kustomization["resources"], *(p["path"] for p in kustomization["patches"])]:
        assert (overlay / reference).exists(), f"{environment}: {reference} does not exist"
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        rendered = subprocess.run(
            [kubectl, "kustomize", str(overlay)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        return [doc for doc in yaml.safe_load_all(rendered) if doc]
    # Without kubectl: the base's resources with the overlay's patches merged in.
    assert kustomization["resources"] == ["../../kubernetes"]
    base = ROOT / "deploy" / "kubernetes"
    documents = [
        yaml.safe_load((base / name).read_text(encoding="utf-8"))
        for name in manifest("kustomization.yaml")["resources"]
    ]
    for patch_ref in kustomization["patches"]:
        patch = yaml.safe_load((overlay / patch_ref["path"]).read_text(encoding="utf-8"))
        matches = [
            doc
            for doc in documents
            if (doc["kind"], doc["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])
        ]
        assert len(matches) == 1, patch_ref
        matches[0].setdefault("data", {}).update(patch.get("data", {}))
    return documents


def rendered(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in documents if doc["kind"] == kind and doc["metadata"]["name"] == "ctxfy"]
    assert len(found) == 1, kind
    return found[0]


@pytest.mark.parametrize("environment", sorted(ENVIRONMENT_HOSTS))
def test_each_environment_allows_its_public_host_and_the_service_names(environment: str) -> None:
    documents = render_environment(environment)
    data = rendered(documents, "ConfigMap")["data"]
    allowed = data["CTXFY_ALLOWED_HOSTS"].split(",")
    assert ENVIRONMENT_HOSTS[environment] in allowed
    assert set(IN_CLUSTER_HOSTS) <= set(allowed)
    others = set(ENVIRONMENT_HOSTS.values()) - {ENVIRONMENT_HOSTS[environment]}
    assert not others & set(allowed), "another environment's host"
    # Everything else comes from the base ConfigMap, unchanged.
    base = {
        k: v for k, v in manifest("configmap.yaml")["data"].items() if k != "CTXFY_ALLOWED_HOSTS"
    }
    assert base.items() <= data.items()
    assert {doc["kind"] for doc in documents} >= {"Deployment", "Service", "PodDisruptionBudget"}


def probes() -> dict[str, str]:
    container = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    return {
        name: container[name]["httpGet"]["path"]
        for name in ("startupProbe", "livenessProbe", "readinessProbe")
    }


@pytest.mark.parametrize("environment", sorted(ENVIRONMENT_HOSTS))
async def test_environment_settings_admit_its_host_the_service_and_the_probes(
    environment: str, tmp_path: Path, serve_http: ServeHttp
) -> None:
    """ctxfy with the environment's ConfigMap answers the deploy smoke test and the probes.

    The smoke test sends ``Host: <BASE_URL's host>``; in-cluster clients the Service's DNS
    names; kubelet (and per-pod Prometheus scraping) ``Host: <pod IP>:8000`` to the pod IP.
    """
    data = rendered(render_environment(environment), "ConfigMap")["data"]
    settings = Settings.from_env({**data, "CTXFY_DATA_DIR": str(tmp_path)})
    app = build_http_app(build_server(settings, key_store=InMemoryKeyStore()), settings)
    async with serve_http(app) as base, httpx.AsyncClient(timeout=10) as client:
        for host in [ENVIRONMENT_HOSTS[environment], *IN_CLUSTER_HOSTS, "ctxfy.ctxfy.svc:8000"]:
            response = await client.get(f"{base}/ready", headers={"Host": host})
            assert response.status_code == 200, (host, response.status_code)
        assert (
            await client.get(f"{base}/ready", headers={"Host": "rebind.example"})
        ).status_code == 421
    # A probe reaches the pod IP, so the request arrives on that address (ASGI "server").
    pod = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=pod, base_url="http://10.42.0.7:8000") as kubelet:
        for probe, path in probes().items():
            response = await kubelet.get(path)
            assert response.status_code == 200, (probe, path, response.status_code)


# --- Workflows --------------------------------------------------------------------------------


def workflow(name: str) -> dict[Any, Any]:
    data: dict[Any, Any] = load_yaml(f".github/workflows/{name}")
    return data


def test_ci_workflow_runs_the_ci_script_and_the_container_smoke_test() -> None:
    jobs = workflow("ci.yml")["jobs"]
    commands = {name: [step.get("run", "") for step in job["steps"]] for name, job in jobs.items()}
    assert any(run.strip() == "bash .ci/run" for run in commands["checks"])
    assert any("scripts/container-smoke.sh" in run for run in commands["container"])


def test_release_deploys_one_digest_to_staging_then_production() -> None:
    jobs = workflow("release.yml")["jobs"]
    # Nothing is built, pushed or deployed unless CI passes on the released commit.
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert "workflow_call" in workflow("ci.yml")[True]
    assert jobs["image"]["needs"] in ("ci", ["ci"])
    assert jobs["staging"]["needs"] == "image"
    assert set(jobs["production"]["needs"]) == {"image", "staging"}
    for stage in ("staging", "production"):
        assert jobs[stage]["uses"] == "./.github/workflows/deploy.yml"
        assert jobs[stage]["with"]["environment"] == stage
        assert jobs[stage]["with"]["digest"] == "${{ needs.image.outputs.digest }}"
    deploy = workflow("deploy.yml")
    # YAML 1.1 reads the key "on" as True.
    assert "workflow_call" in deploy[True]
    assert deploy["jobs"]["deploy"]["environment"]["name"] == "${{ inputs.environment }}"
    # It applies that environment's overlay (its CTXFY_ALLOWED_HOSTS), not the bare base.
    apply = next(
        step for step in deploy["jobs"]["deploy"]["steps"] if "kubectl apply" in step.get("run", "")
    )
    assert apply["env"]["ENVIRONMENT"] == "${{ inputs.environment }}"
    assert '"$GITHUB_WORKSPACE/deploy/environments/$ENVIRONMENT"' in apply["run"]
    for stage in ("staging", "production"):
        assert (ROOT / "deploy" / "environments" / stage / "kustomization.yaml").exists(), stage


def deploy_apply_script() -> str:
    """The shell script of deploy.yml's step that renders, checks and applies the overlay."""
    steps = workflow("deploy.yml")["jobs"]["deploy"]["steps"]
    script: str = next(step["run"] for step in steps if step.get("id") == "apply")
    return script


def kubectl_for_render() -> str:
    """The real kubectl (kustomize); GitHub's ubuntu-24.04 runners ship it."""
    found = shutil.which("kubectl")
    if found is None:
        if os.environ.get("GITHUB_ACTIONS", "").lower() == "true":
            pytest.fail("kubectl is missing on the GitHub runner (its ubuntu image ships it)")
        pytest.skip("kubectl is not installed: the deploy step renders with `kubectl kustomize`")
    return found


def run_deploy_apply(tmp_path: Path, environment: str, base_url: str) -> tuple[int, str, Path]:
    """Run the apply step as GitHub would, with real kustomize and a cluster-less kubectl.

    Returns the exit status, the output and the log of the kubectl calls that would have
    reached the cluster (anything but ``kustomize``).
    """
    real = kubectl_for_render()
    stubs = tmp_path / "bin"
    stubs.mkdir()
    calls = tmp_path / "cluster-calls.log"
    stub = stubs / "kubectl"
    stub.write_text(
        "#!/usr/bin/env bash\n"
        f'if [[ "$1" == kustomize ]]; then exec {real} "$@"; fi\n'
        f'echo "$*" >>{calls}\n',
        encoding="utf-8",
    )
    stub.chmod(0o755)
    python = stubs / "python3"  # the step's Python: this one, which has PyYAML
    python.write_text(f'#!/usr/bin/env bash\nexec {sys.executable} "$@"\n', encoding="utf-8")
    python.chmod(0o755)
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    environ = {
        "PATH": f"{stubs}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "GITHUB_WORKSPACE": str(ROOT),
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "ENVIRONMENT": environment,
        "IMAGE": "ghcr.io/acme/ctxfy",
        "DIGEST": "sha256:" + "a" * 64,
        "BASE_URL": base_url,
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", deploy_apply_script()],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, calls


@pytest.mark.parametrize("environment", sorted(ENVIRONMENT_HOSTS))
def test_deploy_step_renders_the_overlay_with_the_digest_and_applies_it(
    environment: str, tmp_path: Path
) -> None:
    status, output, calls = run_deploy_apply(
        tmp_path, environment, f"https://{ENVIRONMENT_HOSTS[environment].upper()}/"
    )
    assert status == 0, output
    documents = [
        doc
        for doc in yaml.safe_load_all((tmp_path / "runner" / "manifests.yaml").read_text())
        if doc
    ]
    pod = rendered(documents, "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "ghcr.io/acme/ctxfy@sha256:" + "a" * 64
    allowed = rendered(documents, "ConfigMap")["data"]["CTXFY_ALLOWED_HOSTS"]
    assert ENVIRONMENT_HOSTS[environment] in allowed
    assert calls.read_text().splitlines() == [
        f"apply --server-side -f {tmp_path / 'runner' / 'manifests.yaml'}",
        "-n ctxfy rollout status deployment/ctxfy --timeout=5m",
    ]
    assert (tmp_path / "output").read_text() == "applied=true\n"


def test_deploy_step_applies_nothing_when_base_url_host_is_not_allowed(tmp_path: Path) -> None:
    status, output, calls = run_deploy_apply(tmp_path, "staging", "https://ctxfy.example.com")
    assert status != 0
    assert "::error::BASE_URL host ctxfy.example.com is not in CTXFY_ALLOWED_HOSTS" in output
    assert not calls.exists(), "nothing may reach the cluster"
    assert not (tmp_path / "output").exists()


def check_allowed_host(base_url: str, allowed: str, tmp_path: Path) -> int:
    """Exit status of scripts/check-allowed-host.py on a ConfigMap as kustomize renders it."""
    manifests = tmp_path / "manifests.yaml"
    documents = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ctxfy"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ctxfy", "namespace": "ctxfy"},
            "data": {"CTXFY_ALLOWED_HOSTS": allowed, "CTXFY_LOG_LEVEL": "INFO"},
        },
    ]
    manifests.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check-allowed-host.py"), base_url, manifests],
        capture_output=True,
        timeout=60,
        check=False,
    ).returncode


HOST_CASES = [
    # (BASE_URL, CTXFY_ALLOWED_HOSTS)
    ("https://ctxfy.staging.example.com", "*.staging.example.com"),  # YAML-quoted by kustomize
    ("https://ctxfy.staging.example.com", "*.example.com"),
    ("https://b.example.com", "a.example.com, b.example.com"),  # space after the comma
    ("https://B.Example.COM/mcp", "a.example.com,b.example.com"),
    ("https://b.example.com:8443", "B.EXAMPLE.COM:443"),  # ports are not compared
    ("https://b.example.com", " , ,b.example.com,"),
    ("https://other.example.org", "a.example.com,*.example.com"),
    ("https://example.com", "*.example.com"),
    ("https://a.example.com.evil.test", "a.example.com"),
    ("https://ctxfy.example.com", "*"),
]


@pytest.mark.parametrize(("base_url", "allowed"), HOST_CASES)
async def test_host_check_agrees_with_the_server(
    base_url: str, allowed: str, tmp_path: Path
) -> None:
    """The deploy check passes exactly when ctxfy with that setting answers BASE_URL's host."""
    settings = Settings.from_env({"CTXFY_ALLOWED_HOSTS": allowed, "CTXFY_DATA_DIR": str(tmp_path)})
    app = build_http_app(build_server(settings, key_store=InMemoryKeyStore()), settings)
    # The request arrives on another address, so only CTXFY_ALLOWED_HOSTS can admit it.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://10.42.0.7:8000") as c:
        netloc = httpx.URL(base_url).netloc.decode()
        served = (await c.get("/ready", headers={"Host": netloc})).status_code
    assert served in (200, 421)
    assert (check_allowed_host(base_url, allowed, tmp_path) == 0) == (served == 200)


def test_host_check_cases_cover_both_answers(tmp_path: Path) -> None:
    statuses = {check_allowed_host(url, allowed, tmp_path) for url, allowed in HOST_CASES}
    assert statuses == {0, 1}


# --- Configuration reference -------------------------------------------------------------------


def test_configuration_page_lists_every_variable_ctxfy_reads() -> None:
    sources = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "ctxfy").rglob("*.py"))
    variables = set(re.findall(r'"(CTXFY_[A-Z0-9_]+)"', sources))
    assert "CTXFY_PORT" in variables
    page = read("docs/configuration.md")
    documented = set(re.findall(r"^\| `(CTXFY_[A-Z0-9_]+)` \| ([^|]+) \|", page, re.MULTILINE))
    names = {name for name, _default in documented}
    assert variables <= names, f"missing from docs/configuration.md: {sorted(variables - names)}"
    assert all(default.strip() for _name, default in documented)
