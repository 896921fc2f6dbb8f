"""The ``mtproxy`` (alias ``prometheus-multi-tenant-proxy``) command line.

Without a subcommand it runs the service with the original's flags (``--config``,
``--port``, ``--log-level``, ``--kubeconfig``, ``--leader-elect`` and the leader-election
ID and namespace). Subcommands are tools around it: ``check`` validates manifests and
config files, ``manifests`` regenerates the CRD, ``dev`` runs the local demo.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from mtproxy.api import CRD_FILENAME, APIValidationError, load_config, render_crd_yaml
from mtproxy.cmd.check import run_check
from mtproxy.cmd.logsetup import LEVELS, configure_logging
from mtproxy.cmd.servicemetrics import version

__all__ = ["build_parser", "console_main", "leader_election_namespace", "main"]

DEFAULT_CONFIG_PATH = "/etc/prometheus-proxy/config.yaml"
DEFAULT_LEADER_ELECTION_ID = "prometheus-multi-tenant-proxy-remote-write"


def _go_bool(text: str) -> bool:
    """Parse a boolean flag value the way Go's ``flag`` package does."""
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def _add_service_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG_PATH, help="config file (YAML or JSON)")
    parser.add_argument("--host", default="0.0.0.0", help="address the proxy listens on (127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port of the proxy")
    parser.add_argument("--log-level", default="info", choices=sorted(LEVELS), help="log level")
    parser.add_argument("--kubeconfig", default="", help="kubeconfig path; default: in-cluster, then ~/.kube/config")
    parser.add_argument(
        "--leader-elect",
        type=_go_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="elect one replica to run remote-write jobs (default true; --leader-elect=false to disable)",
    )
    parser.add_argument("--leader-election-id", default=DEFAULT_LEADER_ELECTION_ID, help="name of the Lease")
    parser.add_argument(
        "--leader-election-namespace",
        default="",
        help="namespace of the Lease; default: $POD_NAMESPACE, then monitoring",
    )
    # Hidden: the Lease timing (controller-runtime's 15/10/2 s). Tests shorten it to make a
    # leader handover quick; operators have no reason to change it.
    parser.add_argument("--leader-election-lease-duration", type=float, default=15.0, help=argparse.SUPPRESS)
    parser.add_argument("--leader-election-renew-deadline", type=float, default=10.0, help=argparse.SUPPRESS)
    parser.add_argument("--leader-election-retry-period", type=float, default=2.0, help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="mtproxy",
        description="Multi-tenant query proxy and lossless remote-write forwarder for a shared Prometheus.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    _add_service_flags(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser("check", help="validate MetricAccess manifests and config files")
    check.add_argument("--config", dest="check_config", metavar="CONFIG", help="also apply this config's guardrails")
    check.add_argument("files", nargs="+", metavar="FILE")
    manifests = commands.add_parser("manifests", help="regenerate the CRD from the API schemas")
    manifests.add_argument("--output-dir", default="config/crd/bases", help="where to write the CRD")
    dev = commands.add_parser(
        "dev",
        help="run the whole system locally (Kubernetes mode, demo Prometheus servers, live console)",
        description="Run the whole system on 127.0.0.1 (what `make dev` runs): a Kubernetes API server "
        "(embedded double, or --kube=real), the objects of --objects applied and re-applied on every edit, "
        "an infrastructure Prometheus scraping a demo exporter, one Prometheus per demo tenant and a "
        "Pushgateway, and the service in Kubernetes mode (leader election, status, forwarding). "
        "A kubeconfig is written to .dev/kubeconfig. q or Ctrl-C stops everything.",
    )
    dev.add_argument("--port", dest="dev_port", type=int, default=None, metavar="PORT",
                     help="HTTP port of the proxy (default: 8080)")
    dev.add_argument("--base-port", type=int, default=19090, metavar="PORT",
                     help="first of the demo servers' ports: infrastructure Prometheus, exporter, Pushgateway, "
                     "API server, etcd, then one Prometheus per tenant (default 19090; 0: free ports)")
    dev.add_argument("--kube", choices=["double", "real"], default="double",
                     help="double: the embedded API server (default); real: kube-apiserver and etcd "
                     "built by `make testbin`")
    dev.add_argument("--no-console", dest="console", action="store_false",
                     help="print plain JSON log lines instead of the live console (the default without a terminal)")
    dev.add_argument("--objects", default="examples/dev", metavar="DIR",
                     help="directory of objects (Namespaces, MetricAccess) to apply and watch (default examples/dev)")
    dev.add_argument("--log-level", dest="dev_log_level", default=None, choices=sorted(LEVELS),
                     help="log level (debug also shows the HTTP libraries' lines)")
    enforce = commands.add_parser("enforce", help="print the query the proxy would send for a tenant, or its refusal")
    enforce.add_argument("--namespace", required=True, help="the tenant namespace")
    enforce.add_argument("--access", nargs="+", required=True, metavar="FILE", help="MetricAccess YAML files")
    enforce.add_argument("--endpoint", choices=["query", "series", "labels", "federate"], default="query")
    enforce.add_argument(
        "--config", dest="enforce_config", metavar="CONFIG", help="apply this config's guardrails (default: defaults)"
    )
    enforce.add_argument(
        "query", nargs="?", help="PromQL query (query) or series selector (match[] endpoints; '' for none)"
    )
    relabel = commands.add_parser("relabel", help="apply relabel rules to series read on stdin")
    relabel.add_argument("--rules", required=True, metavar="FILE", help="YAML list of rules, or a MetricAccess")
    relabel.add_argument("--format", choices=["text", "json"], default="text", help="input and output format")
    apiserver = commands.add_parser(
        "local-apiserver", help="run the Kubernetes API double on loopback (tests and local development)"
    )
    apiserver.add_argument("--port", type=int, default=0, help="port (0: a free one; the kubeconfig names it)")
    apiserver.add_argument("--kubeconfig", required=True, help="where to write a kubeconfig for kubectl and clients")
    apiserver.add_argument("--state-file", default=None, help="keep objects across restarts in this JSON file")
    apiserver.add_argument("--review-rules", default=None, help="TokenReview/SubjectAccessReview answers (YAML)")
    return parser


def leader_election_namespace(flag_value: str) -> str:
    """The Lease namespace: the flag, then ``$POD_NAMESPACE``, then ``monitoring``."""
    return flag_value or os.environ.get("POD_NAMESPACE", "") or "monitoring"


def _run_manifests(output_dir: str) -> int:
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, CRD_FILENAME)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(render_crd_yaml())
    print(f"wrote {path}")
    return 0


def _run_dev(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mtproxy.cmd.dev import DevOptions, run_dev

    return run_dev(
        DevOptions(
            port=args.dev_port if args.dev_port is not None else args.port,
            base_port=args.base_port,
            kube=args.kube,
            console=args.console,
            log_level=args.dev_log_level or args.log_level,
            objects_dir=Path(args.objects),
        )
    )


def _run_service(args: argparse.Namespace) -> int:
    import trio

    from mtproxy.cmd.service import ServiceOptions, run_service

    configure_logging(args.log_level)
    try:
        loaded = load_config(args.config)
    except FileNotFoundError:
        print(f"--config: no such file: {args.config}", file=sys.stderr)
        return 2
    except APIValidationError as exc:
        for problem in exc.problems:
            print(f"{args.config}: {problem}", file=sys.stderr)
        return 2
    for warning in loaded.warnings:
        logging.getLogger("mtproxy").warning("config key ignored", extra={"detail": warning})
    options = ServiceOptions(
        host=args.host,
        port=args.port,
        kubeconfig=args.kubeconfig,
        leader_elect=args.leader_elect,
        leader_election_id=args.leader_election_id,
        leader_election_namespace=leader_election_namespace(args.leader_election_namespace),
        lease_duration_s=args.leader_election_lease_duration,
        renew_deadline_s=args.leader_election_renew_deadline,
        retry_period_s=args.leader_election_retry_period,
    )
    try:
        trio.run(run_service, loaded.config, options)
    except RuntimeError as exc:
        print(f"mtproxy: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of both console scripts; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "check":
        return run_check(args.files, config_path=args.check_config, out=sys.stdout, err=sys.stderr)
    if args.command == "manifests":
        return _run_manifests(args.output_dir)
    if args.command == "dev":
        return _run_dev(args)
    if args.command == "enforce":
        from mtproxy.cmd.enforce import run_enforce

        endpoint = "query" if args.endpoint == "query" else "match"
        files, query = list(args.access), args.query
        if query is None:  # "--access a.yaml b.yaml QUERY": the last word is the query
            if len(files) < 2:
                print("mtproxy enforce: a QUERY is required", file=sys.stderr)
                return 2
            query = files.pop()
        guardrails = None
        if args.enforce_config is not None:
            try:
                guardrails = load_config(args.enforce_config).config.guardrails
            except (OSError, UnicodeDecodeError, APIValidationError) as exc:
                print(f"{args.enforce_config}: {exc}", file=sys.stderr)
                return 2
        return run_enforce(args.namespace, files, query, endpoint=endpoint, out=sys.stdout, guardrails=guardrails)
    if args.command == "relabel":
        from mtproxy.cmd.relabel import run_relabel

        try:
            with open(args.rules, encoding="utf-8") as handle:
                rules_text = handle.read()
        except OSError as exc:
            print(f"--rules: cannot read {args.rules}: {exc.strerror}", file=sys.stderr)
            return 1
        return run_relabel(rules_text, stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr, output_format=args.format)
    if args.command == "local-apiserver":
        from mtproxy.apidouble import run_local_apiserver

        configure_logging(args.log_level)
        run_local_apiserver(args.port, args.kubeconfig, args.state_file, rules_file=args.review_rules)
        return 0
    return _run_service(args)


def console_main() -> None:
    """Console-script wrapper: exit with ``main``'s status."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
