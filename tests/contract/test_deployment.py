"""The deployment files stay in step with the code: the RabbitMQ definitions, the
docker-compose wiring and the Kubernetes manifests name every service."""

from __future__ import annotations

from pathlib import Path

import yaml

from services import deploy_definitions
from services.catalogue import all_specs

ROOT = Path(__file__).resolve().parents[2]


def test_rabbitmq_definitions_are_generated_from_the_services() -> None:
    assert deploy_definitions.OUT.read_text() == deploy_definitions.render(), (
        "run `python -m services.deploy_definitions`")


def test_docker_compose_runs_every_service_like_make_run_distributed() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for spec in all_specs():
        http = compose[spec.name]
        module = spec.application.__module__.rsplit(".", 1)[0] + ".wsgi:app"
        assert module in http["command"] and f"0.0.0.0:{spec.port}" in http["command"]
        assert http["ports"] == [f"{spec.port}:{spec.port}"]
        workers = [c["command"] for name, c in compose.items()
                   if name.startswith(f"{spec.name}-")]
        expected = [["slactl", "worker", spec.name, *(["--only", roles] if roles else [])]
                    for roles in spec.worker_processes or ("",)]
        assert sorted(workers) == sorted(expected)
    for dependency in ("rabbitmq", "postgres", "redis"):
        assert dependency in compose


def test_kubernetes_manifests_exist_for_every_service() -> None:
    for spec in all_specs():
        manifest = ROOT / "deploy" / "kubernetes" / f"{spec.name}.yaml"
        documents = list(yaml.safe_load_all(manifest.read_text()))
        names = {d["metadata"]["name"] for d in documents}
        assert {spec.name, f"{spec.name}-worker"} <= names
