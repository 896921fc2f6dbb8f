"""The config ``mtproxy dev`` runs the service with, built from the port plan."""

from __future__ import annotations

import logging

from mtproxy.api import AuthType, TenantSource, load_config_text
from mtproxy.cmd.dev import DEMO_TENANTS, dev_commands
from mtproxy.cmd.devconfig import dev_config, dev_config_yaml
from mtproxy.cmd.devports import plan_ports
from mtproxy.cmd.logsetup import QUIET_LOGGERS, configure_logging

PORTS = plan_ports(8080, base_port=19090, tenants=DEMO_TENANTS)


def test_the_dev_config_loads_without_warnings_in_kubernetes_mode_with_forwarding() -> None:
    assert load_config_text(dev_config_yaml(PORTS)).warnings == ()
    config = dev_config(PORTS)
    assert config.tenants.source is TenantSource.KUBERNETES
    assert config.remote_write.enabled is True
    assert config.discovery.static.targets == ("http://127.0.0.1:19090",)
    assert config.auth.type is AuthType.NONE
    assert config.guardrails.require_isolation is True
    assert config.proxy.enable_request_logging is True


def test_each_demo_tenants_in_cluster_names_map_to_its_demo_servers() -> None:
    aliases = dict(dev_config(PORTS).remote_write.host_aliases)
    assert aliases == {
        "prometheus.team-a.svc.cluster.local": "127.0.0.1:19095",
        "pushgateway.team-a.svc.cluster.local": "127.0.0.1:19092",
        "prometheus.team-b.svc.cluster.local": "127.0.0.1:19096",
        "pushgateway.team-b.svc.cluster.local": "127.0.0.1:19092",
    }


def test_commands_use_the_paths_they_are_given_and_say_how_to_get_kubectl() -> None:
    commands = dev_commands(PORTS, kubeconfig=".dev/kubeconfig", objects_dir="my dir", mtproxy=".venv/bin/mtproxy",
                            kubectl=None)
    assert any(c.startswith(".venv/bin/mtproxy enforce --namespace team-b --access 'my dir/tenants/team-b.yaml'")
               for c in commands)
    assert commands[-1].startswith("# kubectl not found")


def test_third_party_loggers_are_quiet_unless_debug() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("info")
        assert all(logging.getLogger(name).level == logging.WARNING for name in QUIET_LOGGERS)
        assert "httpx" in QUIET_LOGGERS and "hypercorn.access" in QUIET_LOGGERS
        configure_logging("debug")
        assert all(logging.getLogger(name).level == logging.NOTSET for name in QUIET_LOGGERS)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
