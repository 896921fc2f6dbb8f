"""``mtproxy dev --kube=real``: a real etcd and kube-apiserver, as built by ``make testbin``.

The binaries are looked up in the testbin cache (:func:`mtproxy.cmd.devkube.testbin_dir`,
newest version of each). The API server is set up the way envtest sets up its own, with
what a single-user loopback server needs and nothing more:

- serving HTTPS on loopback with a self-signed certificate it makes itself (``--cert-dir``);
  the kubeconfig says ``insecure-skip-tls-verify`` since nothing but this machine talks to it;
- one static token (``--token-auth-file``) in ``system:masters``, which the kubeconfig carries;
- a service-account signing key pair made per run (the API server refuses to start without);
- no controller manager, so a deleted namespace stays Terminating (the double removes it).

Everything lives in the run's work directory, removed when ``mtproxy dev`` stops.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import trio
import yaml

from mtproxy.cmd.devkube import DevCluster, testbin_dir
from mtproxy.cmd.devports import LOOPBACK, DevPorts
from mtproxy.cmd.devprocess import ChildServer

__all__ = ["real_binaries", "run_real"]

logger = logging.getLogger(__name__)


def real_binaries() -> tuple[Path, Path] | None:
    """(etcd, kube-apiserver) from the testbin cache, or None when either is not built."""
    base = testbin_dir()
    etcd = sorted(base.glob("etcd-*/etcd"))
    apiserver = sorted(base.glob("kubernetes-*/kube-apiserver"))
    if not etcd or not apiserver:
        return None
    return etcd[-1], apiserver[-1]


def _service_account_keys(directory: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = directory / "sa.key"
    public = directory / "sa.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    private.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def _write_kubeconfig(path: Path, url: str, token: str) -> None:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "mtproxy-dev", "cluster": {"server": url, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "mtproxy-dev", "user": {"token": token}}],
        "contexts": [
            {
                "name": "mtproxy-dev",
                "context": {"cluster": "mtproxy-dev", "user": "mtproxy-dev", "namespace": "default"},
            }
        ],
        "current-context": "mtproxy-dev",
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)


async def run_real(
    ports: DevPorts,
    workdir: Path,
    kubeconfig: Path,
    *,
    task_status: trio.TaskStatus[DevCluster] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run etcd and kube-apiserver until cancelled; report the cluster once the API server is ready.

    Raises:
        RuntimeError: the binaries are not built (``make testbin`` builds them).
        ChildFailed: either server did not start.
    """
    binaries = real_binaries()
    if binaries is None:
        raise RuntimeError(f"--kube=real: etcd and kube-apiserver are not built in {testbin_dir()}; run: make testbin")
    etcd_binary, apiserver_binary = binaries
    workdir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    tokens = workdir / "tokens.csv"
    tokens.write_text(f'{token},mtproxy-dev,uid-mtproxy-dev,"system:masters"\n')
    tokens.chmod(0o600)
    signing_key, public_key = _service_account_keys(workdir)
    etcd_url = f"http://{LOOPBACK}:{ports.etcd}"
    url = f"https://{LOOPBACK}:{ports.apiserver}"
    apiserver = ChildServer(
        "kube-apiserver",
        [
            str(apiserver_binary),
            f"--etcd-servers={etcd_url}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--secure-port={ports.apiserver}",
            f"--cert-dir={workdir / 'certs'}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={url}",
            f"--service-account-key-file={public_key}",
            f"--service-account-signing-key-file={signing_key}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--disable-admission-plugins=ServiceAccount",
            "--endpoint-reconciler-type=none",
        ],
        url=url,
        ready_path="/readyz",
        log_path=workdir / "kube-apiserver.log",
        ready_timeout_s=120.0,
        verify=False,
    )
    etcd = ChildServer(
        "etcd",
        [
            str(etcd_binary),
            "--name=mtproxy-dev",
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            # a single member: nobody dials the peer port, so any free one does
            f"--listen-peer-urls=http://{LOOPBACK}:0",
            f"--initial-advertise-peer-urls=http://{LOOPBACK}:2380",
            f"--initial-cluster=mtproxy-dev=http://{LOOPBACK}:2380",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        url=etcd_url,
        ready_path="/health",
        log_path=workdir / "etcd.log",
        stop_after=apiserver.stopped,
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(etcd.run)
            await nursery.start(apiserver.run)
            _write_kubeconfig(kubeconfig, url, token)
            logger.info("kube-apiserver ready", extra={"url": url, "binary": str(apiserver_binary)})
            task_status.started(DevCluster(kind="real", url=url, kubeconfig=kubeconfig))
    finally:
        kubeconfig.unlink(missing_ok=True)
