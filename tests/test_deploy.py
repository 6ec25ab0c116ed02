"""deploy/: no container engine runs here, so the manifests are checked as data — every
YAML parses, the fields that matter are present and consistent (probes, grace period,
Secret references, selectors, HPA target, compose wiring), the gateway configurations load
with `router.config_file.load` and name rails that exist, and local-cluster.sh is valid bash."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters import registry
from router.config_file import load
from router.sandbox import SIMULATED_RAILS
from router.settings import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
K8S = DEPLOY / "k8s"
SHUTDOWN_TIMEOUT_S = 10  # router/cli.py: AppRunner(shutdown_timeout=10.0)
APP_LABEL = "app.kubernetes.io/name"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _k8s(kind: str) -> dict[str, Any]:
    found = [d for p in sorted(K8S.glob("*.yaml")) for d in _docs(p) if d.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind} under deploy/k8s, found {len(found)}"
    return found[0]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "payrouter")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def _settings_from_text(text: str, tmp_path: Path) -> Settings:
    path = tmp_path / "payrouter.toml"
    path.write_text(text)
    return load(path, env={})


# --------------------------------------------------------------------------- all YAML
@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml")),
                         ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_parses(path: Path) -> None:
    docs = _docs(path)
    assert docs, f"{path} is empty"
    if path.parent == K8S:
        for doc in docs:
            assert doc.get("apiVersion") and doc.get("kind"), f"{path}: apiVersion/kind"
            if doc["kind"] != "Kustomization":
                assert doc.get("metadata", {}).get("name"), f"{path}: metadata.name"


# --------------------------------------------------------------------------- kubernetes
def test_deployment_probes_grace_and_resources() -> None:
    dep = _k8s("Deployment")
    assert dep["apiVersion"] == "apps/v1"
    pod = dep["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > SHUTDOWN_TIMEOUT_S
    c = _container(dep)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    cm = tomllib.loads(_k8s("ConfigMap")["data"]["payrouter.toml"])
    gateway_port = cm["server"]["port"]
    assert gateway_port in ports.values()

    def port_of(probe: dict[str, Any]) -> int:
        port = probe["httpGet"]["port"]
        return ports[port] if isinstance(port, str) else int(port)

    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert port_of(c["readinessProbe"]) == gateway_port
    assert port_of(c["livenessProbe"]) == gateway_port
    assert c["resources"]["requests"]["cpu"], "the HPA's CPU target needs a CPU request"
    assert c["resources"]["requests"]["memory"]
    # preStop pause plus the shutdown timeout still fit inside the grace period
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pause = int(pre_stop[-1]) if pre_stop[:1] == ["sleep"] else 0
    assert pause + SHUTDOWN_TIMEOUT_S < pod["terminationGracePeriodSeconds"]


def test_deployment_env_secrets_config_and_external_redis() -> None:
    dep = _k8s("Deployment")
    c = _container(dep)
    env = {e["name"]: e for e in c["env"]}
    secret = _k8s("Secret")
    for name in ("PAYROUTER_ADMIN_TOKEN", "PAYROUTER_KEY_PEPPER"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]
        assert "value" not in env[name]
        assert "REPLACE-ME" in secret["stringData"][ref["key"]], "placeholders only"
    redis_url = env["REDIS_URL"].get("value", "")
    assert (redis_url.startswith(("redis://", "unix://", "redis+cluster://"))
            or "valueFrom" in env["REDIS_URL"])
    # The settings file comes from the ConfigMap, at the path the container is started with.
    config_map = _k8s("ConfigMap")["metadata"]["name"]
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    config_path = c["args"][c["args"].index("--config") + 1]
    mount = mounts[config_path]
    assert volumes[mount["name"]]["configMap"]["name"] == config_map
    assert mount["subPath"] in _k8s("ConfigMap")["data"]
    # Every rail's keys_dir in the ConfigMap is mounted (from a Secret).
    cm = tomllib.loads(_k8s("ConfigMap")["data"]["payrouter.toml"])
    for rail, body in cm["rails"].items():
        m = mounts[body["keys_dir"]]
        assert "secret" in volumes[m["name"]], f"rail {rail}: keys from a Secret"


def test_service_hpa_pdb_point_at_the_deployment() -> None:
    dep = _k8s("Deployment")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()

    svc = _k8s("Service")
    assert svc["spec"]["selector"].items() <= labels.items()
    container_ports = {p["name"]: p["containerPort"] for p in _container(dep)["ports"]}
    for port in svc["spec"]["ports"]:
        target = port["targetPort"]
        assert target in container_ports or target in container_ports.values()

    hpa = _k8s("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == (
        "apps/v1", "Deployment", dep["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu"
               for m in hpa["spec"]["metrics"])

    pdb = _k8s("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert ("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"])
    if "minAvailable" in pdb["spec"]:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], "drains must proceed"


def test_kustomization_lists_existing_files() -> None:
    kust = _docs(K8S / "kustomization.yaml")[0]
    assert kust["kind"] == "Kustomization"
    resources = kust["resources"]
    for name in resources:
        assert (K8S / name).is_file(), f"kustomization lists missing {name}"
    kinds = {d["kind"] for name in resources for d in _docs(K8S / name)}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "ConfigMap"} <= kinds
    assert "secret.example.yaml" not in resources, "placeholder secrets are never applied"


def test_k8s_gateway_config_loads(tmp_path: Path) -> None:
    text = _k8s("ConfigMap")["data"]["payrouter.toml"]
    settings = _settings_from_text(text, tmp_path)
    adapters = registry.available()
    assert settings.rails
    for rail in settings.rails:
        assert rail.options.get("adapter", rail.name) in adapters, rail.name
        assert rail.base_url.startswith(("http://", "https://"))
        assert rail.keys_dir is not None
    assert settings.redis.url is None, "Redis comes from REDIS_URL (external)"
    with_env = load(tmp_path / "payrouter.toml", env={"REDIS_URL": "redis://r:6379/0"})
    assert with_env.redis.url == "redis://r:6379/0"


# --------------------------------------------------------------------------- compose
def test_compose_services() -> None:
    compose = _compose()
    services = compose["services"]
    sims = {f"sim-{rail}" for rail in SIMULATED_RAILS}
    assert {"gateway", "redis"} | sims <= services.keys()

    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    assert "--appendonly" in redis["command"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert "profiles" not in redis

    for rail in SIMULATED_RAILS:
        sim = services[f"sim-{rail}"]
        cmd = sim["command"]
        assert cmd[:3] == ["payrouter", "sim", rail]
        assert "--port" in cmd and "--keys-dir" in cmd and "--host" in cmd
        port = cmd[cmd.index("--port") + 1]
        assert any(str(p).endswith(f":{port}") for p in sim["ports"])
        assert any(v.startswith("keys:") for v in sim["volumes"])
        assert "healthcheck" in sim and "profiles" not in sim

    gw = services["gateway"]
    assert gw["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / gw["build"]["context"] / gw["build"]["dockerfile"]).is_file()
    cmd = gw["command"]
    assert cmd[:2] == ["payrouter", "serve"]
    assert cmd[cmd.index("--config") + 1] == "/etc/payrouter/payrouter.toml"
    assert any(v.startswith("./compose.payrouter.toml:/etc/payrouter/payrouter.toml")
               for v in gw["volumes"])
    assert any(v.startswith("keys:") for v in gw["volumes"])
    assert gw["ports"]
    assert set(gw["depends_on"]) >= {"redis"} | sims
    assert all(d["condition"] == "service_healthy" for d in gw["depends_on"].values())
    assert {"PAYROUTER_ADMIN_TOKEN", "PAYROUTER_KEY_PEPPER"} <= gw["environment"].keys()
    assert gw["deploy"]["replicas"]
    assert "keys" in compose["volumes"]


def test_compose_cluster_profile() -> None:
    services = _compose()["services"]
    nodes = [n for n, s in services.items() if "cluster" in s.get("profiles", [])
             and n.startswith("redis-node-")]
    assert len(nodes) == 6
    for name in nodes:
        cmd = services[name]["command"]
        assert services[name]["image"].startswith("redis:7")
        assert cmd[cmd.index("--cluster-enabled") + 1] == "yes"
    init = services["redis-cluster-init"]
    assert init["profiles"] == ["cluster"]
    assert set(init["depends_on"]) == set(nodes)
    script = " ".join(init["command"])
    assert "--cluster create" in script and "--cluster-replicas 1" in script
    # The gateway does not use the cluster (it does not speak Redis Cluster yet).
    assert not set(services["gateway"]["depends_on"]) & (set(nodes) | {"redis-cluster-init"})


def test_compose_gateway_config_loads(tmp_path: Path) -> None:
    text = (DEPLOY / "compose.payrouter.toml").read_text()
    settings = _settings_from_text(text, tmp_path)
    services = _compose()["services"]
    adapters = registry.available()
    assert settings.redis.url == "redis://redis:6379/0"
    assert settings.server.public_url == "http://gateway:8080"
    assert {r.name for r in settings.rails} == set(SIMULATED_RAILS)
    for rail in settings.rails:
        assert rail.name in adapters
        host, port = rail.base_url.removeprefix("http://").split(":")
        sim_cmd = services[host]["command"]
        assert sim_cmd[2] == rail.name
        assert sim_cmd[sim_cmd.index("--port") + 1] == port
        assert str(rail.keys_dir) == sim_cmd[sim_cmd.index("--keys-dir") + 1]


def test_example_config_loads(tmp_path: Path) -> None:
    settings = _settings_from_text((DEPLOY / "payrouter.example.toml").read_text(), tmp_path)
    assert all(r.name in registry.available() for r in settings.rails)


# --------------------------------------------------------------------------- local cluster
def test_local_cluster_script_is_valid_bash() -> None:
    bash = shutil.which("bash")
    assert bash is not None
    script = DEPLOY / "local-cluster.sh"
    result = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    help_out = subprocess.run([bash, str(script), "--help"], capture_output=True, text=True,
                              check=False, timeout=30)
    assert help_out.returncode == 0, help_out.stderr
    assert "--cluster" in help_out.stdout
