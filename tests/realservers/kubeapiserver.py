"""A real ``kube-apiserver`` on a real ``etcd``, as controller-runtime's envtest runs them.

Both binaries come from ``hack/testbin.sh`` (:mod:`realservers.testbin`). One etcd serves a
:class:`ControlPlane`; each API server of it stores under its own etcd prefix, so a test
suite that needs a clean server (the API double's contract suite registers its own test CRD
under the name the generated one has) gets one without a second etcd.

Reuse it from any test or e2e fixture (the ``kube_apiserver`` fixture in ``tests/conftest.py``
is exactly this)::

    from kubetesting import load_crd
    from realservers.kubeapiserver import ControlPlane

    plane = ControlPlane.start(tmp_path_factory.mktemp("kube"))  # etcd; skips if not built
    server = plane.apiserver("my-e2e", crds=[load_crd()])        # started once per name
    server.kubeconfig_path            # admin kubeconfig (token + CA file): kubectl, mtproxy --kubeconfig
    server.write_kubeconfig(path, user="alice", namespace="team-a")  # an unprivileged user's
    server.admin_client()             # kubernetes.client.ApiClient (close it)
    server.cluster_config()           # mtproxy.controller ClusterConfig for a KubeClient
    server.kubectl("get", "ma", "-A") # the built kubectl of the same version
    plane.stop()

How the server is set up, and why:

- Serving: HTTPS only (kube-apiserver has had no insecure port since 1.20) on a free loopback
  port, with a certificate for ``127.0.0.1``/``localhost`` from a CA made per control plane
  (``ca.crt``, which the kubeconfigs name as ``certificate-authority``).
- Authentication: a static token file (``--token-auth-file``). :data:`ADMIN` is in
  ``system:masters``; :data:`USERS` are unprivileged (``alice`` and ``bob`` in group
  ``tenants``, ``nobody`` in none). :meth:`RunningKubeApiserver.grant` binds RBAC rules to
  them; :meth:`RunningKubeApiserver.service_account_token` makes a real service-account
  token with the TokenRequest API.
- Authorization: ``--authorization-mode=RBAC`` only, so SubjectAccessReviews are real answers.
- Service accounts: an ECDSA signing key pair per control plane; the ``ServiceAccount``
  admission plugin is off because no controller manager runs to create ``default`` accounts
  (envtest does the same).
- No kube-controller-manager runs: nothing finalises a deleted namespace, garbage-collects
  owned objects or fills Endpoints. Tests that need those are the double's only (see the
  differences table in ``apidouble/__init__.py``).
- ConfigMaps are served without the watch cache (``--watch-cache-sizes=configmaps#0``), so a
  compaction of etcd (:meth:`RunningKubeApiserver.compact`) makes older resourceVersions of
  ConfigMaps answer 410 at once, as the tests of relisting need; every other resource is
  watched through the cache, as in production.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import logging
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from realservers.ports import LOOPBACK
from realservers.processes import ServerNotReadyError, ServerProcess
from realservers.testbin import Program, require

__all__ = ["ADMIN", "USERS", "ControlPlane", "RunningKubeApiserver", "StaticUser"]

logger = logging.getLogger(__name__)

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
_ETCD_READY_PATH = "/health"
_APISERVER_READY_PATH = "/readyz"
_ESTABLISHED_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class StaticUser:
    """A user of the static token file."""

    name: str
    token: str
    groups: tuple[str, ...] = ()
    uid: str = ""


ADMIN = StaticUser("admin", "admin-token", ("system:masters",), "uid-admin")
"""The administrator: ``system:masters`` is allowed everything by RBAC's bootstrap policy."""

USERS: Mapping[str, StaticUser] = {
    user.name: user
    for user in (
        ADMIN,
        StaticUser("alice", "alice-token", ("tenants",), "uid-alice"),
        StaticUser("bob", "bob-token", ("tenants",), "uid-bob"),
        StaticUser("nobody", "nobody-token", (), "uid-nobody"),
        # the token every kubeconfig of the API double carries: a suite reading one sees the same
        StaticUser("apidouble", "apidouble", ("system:masters",), "uid-apidouble"),
    )
}
"""Every static user by name; all but ``admin`` may do nothing until :meth:`~RunningKubeApiserver.grant`."""


# -- key material ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pki:
    """The files one control plane's API servers share."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    sa_public_key: Path
    sa_signing_key: Path
    token_file: Path


def _write_pki(directory: Path) -> _Pki:
    """A CA, a serving certificate for loopback signed by it, a service-account key pair, the tokens."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mtproxy-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    serving_key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default.svc"),
             x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
    serving = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = ec.generate_private_key(ec.SECP256R1())
    pki = _Pki(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        sa_public_key=directory / "sa.pub",
        sa_signing_key=directory / "sa.key",
        token_file=directory / "tokens.csv",
    )
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.serving_cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    pki.serving_key.write_bytes(pem_key(serving_key))
    pki.sa_signing_key.write_bytes(pem_key(sa_key))
    pki.sa_public_key.write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    pki.token_file.write_text("".join(
        f'{user.token},{user.name},{user.uid},"{",".join(user.groups)}"\n' for user in USERS.values()))
    for path in (pki.serving_key, pki.sa_signing_key, pki.token_file):
        path.chmod(0o600)
    return pki


# -- the control plane -----------------------------------------------------------------------------


class ControlPlane:
    """One etcd and the API servers started on it, by name.

    Use :meth:`start`; :meth:`apiserver` starts a server the first time a name is asked for
    and returns the same one afterwards. :meth:`stop` stops them all, then etcd.
    """

    def __init__(self, workdir: Path, *, etcd: ServerProcess, pki: _Pki, apiserver_binary: Path,
                 kubectl_binary: Path | None) -> None:
        self.workdir = workdir
        self.etcd = etcd
        self._pki = pki
        self._apiserver_binary = apiserver_binary
        self._kubectl_binary = kubectl_binary
        self._servers: dict[str, RunningKubeApiserver] = {}

    @classmethod
    def start(cls, workdir: Path) -> ControlPlane:
        """Start etcd in ``workdir`` (no API server yet).

        Skips the calling test when etcd or kube-apiserver is not built (fails it in CI).
        """
        etcd_binary = require(Program.ETCD)
        apiserver_binary = require(Program.KUBE_APISERVER)
        kubectl = require(Program.KUBECTL)
        pki = _write_pki(workdir / "pki")
        etcd = _etcd(etcd_binary, workdir / "etcd")
        etcd.start()
        return cls(workdir, etcd=etcd, pki=pki, apiserver_binary=apiserver_binary, kubectl_binary=kubectl)

    @property
    def ca_file(self) -> Path:
        """The CA that signed every API server's serving certificate."""
        return self._pki.ca_cert

    def apiserver(self, name: str, *, crds: Sequence[Mapping[str, Any]] = (),
                  extra_args: Sequence[str] = ()) -> RunningKubeApiserver:
        """The API server called ``name``, started on first use with ``crds`` installed and Established.

        ``crds`` and ``extra_args`` count only at the first call for a name.
        """
        server = self._servers.get(name)
        if server is None:
            started = time.monotonic()
            process = _apiserver(self._apiserver_binary, self.workdir / f"apiserver-{name}", name=name,
                                 etcd_url=self.etcd.url, pki=self._pki, extra_args=extra_args)
            server = RunningKubeApiserver(name=name, process=process, plane=self,
                                          kubectl_binary=self._kubectl_binary)
            self._servers[name] = server
            process.start()
            # open_kube(url) and relays in front of it find its TLS context and token by URL
            from kubetesting.servers import register

            register(server.url, server.cluster_config())
            server.wait_default_namespace()
            for crd in crds:
                server.install_crd(crd)
            logger.info("kube-apiserver ready", extra={"server": name, "seconds": time.monotonic() - started})
        return server

    def stop_apiserver(self, name: str) -> None:
        """Stop the API server ``name`` (its data stays in etcd; asking for it again starts it anew)."""
        server = self._servers.pop(name, None)
        if server is not None:
            server.close()
            server.process.stop()

    def etcd_revision(self) -> int:
        """etcd's current revision (every API server's resourceVersions come from it)."""
        answer = _etcd_call(self.etcd.url, "/v3/kv/range", {"key": base64.b64encode(b"\0").decode()})
        return int(answer["header"]["revision"])

    def compact(self) -> int:
        """Compact etcd at its current revision; return that revision."""
        revision = self.etcd_revision()
        _etcd_call(self.etcd.url, "/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    def stop(self) -> None:
        """Stop every API server, then etcd."""
        for server in reversed(list(self._servers.values())):
            server.close()
            server.process.stop()
        self.etcd.stop()


def _etcd(binary: Path, workdir: Path) -> ServerProcess:
    def argv(port: int) -> list[str]:
        url = f"http://{LOOPBACK}:{port}"
        return [
            str(binary),
            "--name=mtproxy-test",
            f"--data-dir={workdir / 'data'}",
            f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}",
            # a single member: nobody dials the peer port, so any free one does
            f"--listen-peer-urls=http://{LOOPBACK}:0",
            f"--initial-advertise-peer-urls=http://{LOOPBACK}:2380",
            f"--initial-cluster=mtproxy-test=http://{LOOPBACK}:2380",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]

    return ServerProcess("etcd", argv, workdir=workdir, ready_path=_ETCD_READY_PATH)


def _etcd_call(url: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
    with httpx.Client(trust_env=False, timeout=10.0) as http:
        response = http.post(f"{url}{path}", json=dict(body))
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


def _apiserver(binary: Path, workdir: Path, *, name: str, etcd_url: str, pki: _Pki,
               extra_args: Sequence[str]) -> ServerProcess:
    workdir.mkdir(parents=True, exist_ok=True)

    def argv(port: int) -> list[str]:
        return [
            str(binary),
            f"--etcd-servers={etcd_url}",
            f"--etcd-prefix=/registry-{name}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--secure-port={port}",
            f"--cert-dir={workdir / 'certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--token-auth-file={pki.token_file}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer=https://{LOOPBACK}:{port}",
            f"--service-account-key-file={pki.sa_public_key}",
            f"--service-account-signing-key-file={pki.sa_signing_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            "--watch-cache-sizes=configmaps#0",
            "--endpoint-reconciler-type=none",
            *extra_args,
        ]

    tls = ssl.create_default_context(cafile=str(pki.ca_cert))
    return ServerProcess(f"kube-apiserver-{name}", argv, workdir=workdir, ready_path=_APISERVER_READY_PATH,
                         ready_timeout_s=90.0, stop_grace_s=10.0, tls=tls)


# -- one API server ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Discovery:
    """Which resource serves a kind, read from discovery once per group version."""

    by_group_version: dict[str, dict[str, tuple[str, bool]]] = field(default_factory=dict)


class RunningKubeApiserver:
    """A started kube-apiserver: its address, credentials and a few admin helpers.

    It offers what tests use of :class:`mtproxy.apidouble.RunningDouble` (``url``, ``port``,
    ``write_kubeconfig``, ``seed``, ``compact``, ``resource_version``), so a suite can take
    either (see ``kubetesting.servers.KubeServer``). The helpers block; call them from a trio
    test through ``trio.to_thread.run_sync``.
    """

    kind = "kube-apiserver"

    def __init__(self, *, name: str, process: ServerProcess, plane: ControlPlane,
                 kubectl_binary: Path | None) -> None:
        self.name = name
        self.process = process
        self._plane = plane
        self._kubectl_binary = kubectl_binary
        self._http: httpx.Client | None = None
        self._discovery = _Discovery()
        self._kubeconfig_path: Path | None = None

    def __repr__(self) -> str:
        return f"<RunningKubeApiserver {self.name} {self.process.url if self.process.running else 'stopped'}>"

    # -- where and who ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``."""
        return self.process.url

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def ca_file(self) -> Path:
        """The CA file that verifies this server's certificate."""
        return self._plane.ca_file

    @property
    def admin_token(self) -> str:
        return ADMIN.token

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context trusting only this control plane's CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    @property
    def kubeconfig_path(self) -> Path:
        """The administrator's kubeconfig, written once into the server's directory."""
        if self._kubeconfig_path is None:
            self._kubeconfig_path = self.write_kubeconfig(self.process.workdir / "kubeconfig")
        return self._kubeconfig_path

    def kubeconfig_document(self, *, user: str = ADMIN.name, token: str | None = None,
                            namespace: str = "default") -> dict[str, Any]:
        """A kubeconfig for ``user`` (a static user's name) or a bearer ``token``."""
        bearer = token if token is not None else USERS[user].token
        cluster = f"kube-apiserver-{self.name}"
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster,
                          "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": user, "user": {"token": bearer}}],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user, "namespace": namespace}}],
            "current-context": cluster,
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | Path, *, namespace: str = "default", user: str = ADMIN.name,
                         token: str | None = None) -> Path:
        """Write a kubeconfig (mode 0600) for kubectl, the ``kubernetes`` client and mtproxy; return its path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        document = self.kubeconfig_document(user=user, token=token, namespace=namespace)
        target.write_text(yaml.safe_dump(document, sort_keys=False))
        target.chmod(0o600)
        return target

    def cluster_config(self, *, token: str | None = None) -> Any:
        """A :class:`mtproxy.controller.clusterconfig.ClusterConfig` for the admin (or ``token``)."""
        from mtproxy.controller.clusterconfig import ClusterConfig

        header = f"Bearer {token or ADMIN.token}"
        return ClusterConfig(host=self.url, verify=self.ssl_context(), token=lambda: header)

    def admin_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` acting as the administrator; the caller closes it."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig_path))

    def http(self) -> httpx.Client:
        """A shared httpx client acting as the administrator (base URL set)."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, verify=self.ssl_context(), trust_env=False, timeout=30.0,
                                      headers={"Authorization": f"Bearer {ADMIN.token}"})
        return self._http

    def close(self) -> None:
        """Close the shared client (the server keeps running)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def kubectl(self, *args: str, kubeconfig: Path | None = None, check: bool = True,
                timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl (the server's version) with the admin kubeconfig (or ``kubeconfig``)."""
        if self._kubectl_binary is None:
            raise RuntimeError("kubectl is not built")
        config = kubeconfig or self.kubeconfig_path
        command = [str(self._kubectl_binary), f"--kubeconfig={config}",
                   f"--cache-dir={self.process.workdir / 'kubectl-cache'}", *args]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        if check and completed.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({completed.returncode}): {completed.stderr}")
        return completed

    @property
    def kubectl_binary(self) -> Path | None:
        return self._kubectl_binary

    # -- what RunningDouble offers ---------------------------------------------------------------

    def resource_version(self) -> int:
        """The newest resourceVersion (etcd's revision, shared by every server of the plane)."""
        return self._plane.etcd_revision()

    def compact(self, up_to: int | None = None) -> int:
        """Compact etcd at its current revision: older ConfigMap versions answer 410 Expired.

        Cached resources (all but ConfigMaps) keep answering from the watch cache's own window.
        """
        if up_to is not None:
            raise ValueError("up_to is not supported on a real API server; it compacts at the current revision")
        return self._plane.compact()

    def seed(self, objects: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Create each object, or replace it when it exists; a ``status`` is written through its subresource."""
        return [self._seed_one(dict(obj)) for obj in objects]

    def _seed_one(self, obj: dict[str, Any]) -> dict[str, Any]:
        http = self.http()
        path = self.collection_path(obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace"))
        name = obj["metadata"]["name"]
        status = obj.get("status")
        created = http.post(path, json=obj)
        if created.status_code == 409:
            current = _checked(http.get(f"{path}/{name}"))
            body = {**obj, "metadata": {**obj["metadata"],
                                        "resourceVersion": current["metadata"]["resourceVersion"]}}
            stored = _checked(http.put(f"{path}/{name}", json=body))
        else:
            stored = _checked(created)
        if status is not None and self._has_status_subresource(obj["apiVersion"], obj["kind"]):
            body = {**stored, "status": status}
            stored = _checked(http.put(f"{path}/{name}/status", json=body))
        return stored

    # -- admin helpers ---------------------------------------------------------------------------

    def collection_path(self, api_version: str, kind: str, namespace: str | None) -> str:
        """The URL path of ``kind``'s collection (from discovery), in ``namespace`` if namespaced."""
        plural, namespaced = self._resource_of(api_version, kind)
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced:
            if not namespace:
                raise ValueError(f"{kind} is namespaced: give metadata.namespace")
            return f"{prefix}/namespaces/{namespace}/{plural}"
        return f"{prefix}/{plural}"

    def _resource_of(self, api_version: str, kind: str) -> tuple[str, bool]:
        resources = self._discovery.by_group_version.get(api_version)
        if resources is None or kind not in resources:
            prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            document = _checked(self.http().get(prefix))
            resources = {
                entry["kind"]: (entry["name"], bool(entry["namespaced"]))
                for entry in document["resources"] if "/" not in entry["name"]
            }
            resources.update({f"{entry['name']}": (entry["name"], bool(entry["namespaced"]))
                              for entry in document["resources"]})
            self._discovery.by_group_version[api_version] = resources
        if kind not in resources:
            raise KeyError(f"{self.name} serves no kind {kind} in {api_version}")
        return resources[kind]

    def _has_status_subresource(self, api_version: str, kind: str) -> bool:
        plural, _ = self._resource_of(api_version, kind)
        return f"{plural}/status" in self._discovery.by_group_version[api_version]

    def wait_default_namespace(self, timeout_s: float = 30.0) -> None:
        """Wait for the ``default`` namespace, which a controller inside the server creates after start."""
        deadline = time.monotonic() + timeout_s
        while self.http().get("/api/v1/namespaces/default").status_code != 200:
            if time.monotonic() > deadline:
                raise ServerNotReadyError(f"{self.name}: no default namespace after {timeout_s} s")
            time.sleep(0.05)

    def install_crd(self, crd: Mapping[str, Any], *, timeout_s: float = _ESTABLISHED_TIMEOUT_S) -> dict[str, Any]:
        """Create (or replace) a CRD; wait until it is Established, served and in the OpenAPI v3 index.

        The last matters to kubectl, which validates ``apply`` with the OpenAPI document; the
        server publishes it about half a second after Established.
        """
        document = dict(crd)
        name = document["metadata"]["name"]
        http = self.http()
        path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        created = http.post(path, json=document)
        if created.status_code == 409:
            current = _checked(http.get(f"{path}/{name}"))
            document = {**document, "metadata": {**document["metadata"],
                                                 "resourceVersion": current["metadata"]["resourceVersion"]}}
            _checked(http.put(f"{path}/{name}", json=document))
        else:
            _checked(created)
        spec = document["spec"]
        served = [version["name"] for version in spec["versions"] if version.get("served", True)]
        deadline = time.monotonic() + timeout_s
        while True:
            stored = _checked(http.get(f"{path}/{name}"))
            conditions = {c["type"]: c["status"] for c in (stored.get("status") or {}).get("conditions") or ()}
            ready = conditions.get("Established") == "True" and all(
                http.get(f"/apis/{spec['group']}/{version}/{spec['names']['plural']}").status_code == 200
                for version in served
            )
            if ready:
                published = _checked(http.get("/openapi/v3")).get("paths") or {}
                ready = all(f"apis/{spec['group']}/{version}" in published for version in served)
            if ready:
                self._discovery.by_group_version.clear()
                return stored
            if time.monotonic() > deadline:
                raise ServerNotReadyError(f"{self.name}: CRD {name} not Established after {timeout_s} s: {conditions}")
            time.sleep(0.05)

    def create_namespace(self, name: str | None = None, *, prefix: str = "t-") -> str:
        """Create a namespace (a fresh random name unless given); return its name."""
        chosen = name or f"{prefix}{uuid.uuid4().hex[:10]}"
        _checked(self.http().post("/api/v1/namespaces", json={"metadata": {"name": chosen}}))
        return chosen

    def grant(self, namespace: str | None, *, verbs: Sequence[str], resources: Sequence[str],
              api_groups: Sequence[str] = ("",), user: str | None = None, group: str | None = None,
              service_account: tuple[str, str] | None = None, name: str | None = None) -> str:
        """Bind one RBAC rule to a user, a group or a ``(namespace, name)`` service account.

        In ``namespace`` a Role and RoleBinding; with ``namespace=None`` a ClusterRole and
        ClusterRoleBinding. Returns the name of the binding.
        """
        if [user, group, service_account].count(None) != 2:
            raise ValueError("give exactly one of user, group and service_account")
        chosen = name or f"grant-{uuid.uuid4().hex[:8]}"
        if user is not None:
            subject: dict[str, str] = {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}
        elif group is not None:
            subject = {"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}
        else:
            assert service_account is not None
            subject = {"kind": "ServiceAccount", "namespace": service_account[0], "name": service_account[1]}
        rule = {"apiGroups": list(api_groups), "resources": list(resources), "verbs": list(verbs)}
        http = self.http()
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        if namespace is None:
            role_kind = "ClusterRole"
            roles, bindings = f"{rbac}/clusterroles", f"{rbac}/clusterrolebindings"
            metadata: dict[str, str] = {"name": chosen}
        else:
            role_kind = "Role"
            roles, bindings = f"{rbac}/namespaces/{namespace}/roles", f"{rbac}/namespaces/{namespace}/rolebindings"
            metadata = {"name": chosen, "namespace": namespace}
        _checked(http.post(roles, json={"metadata": metadata, "rules": [rule]}))
        _checked(http.post(bindings, json={
            "metadata": metadata, "subjects": [subject],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": chosen},
        }))
        return chosen

    def service_account_token(self, namespace: str, name: str, *, audiences: Sequence[str] = (),
                              expiration_s: int = 3600) -> str:
        """A real token of service account ``namespace/name`` (created if missing), from the TokenRequest API."""
        http = self.http()
        accounts = f"/api/v1/namespaces/{namespace}/serviceaccounts"
        created = http.post(accounts, json={"metadata": {"name": name}})
        if created.status_code != 409:
            _checked(created)
        spec: dict[str, Any] = {"expirationSeconds": expiration_s}
        if audiences:
            spec["audiences"] = list(audiences)
        answer = _checked(http.post(f"{accounts}/{name}/token", json={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}))
        token: str = answer["status"]["token"]
        return token


def _checked(response: httpx.Response) -> dict[str, Any]:
    if response.is_error:
        raise AssertionError(f"{response.request.method} {response.request.url.path} answered "
                             f"{response.status_code}: {response.text[:1024]}")
    body: dict[str, Any] = json.loads(response.content)
    return body
