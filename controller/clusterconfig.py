"""Where the API server is and how to authenticate, loaded by the ``kubernetes`` package.

The official loaders understand every kubeconfig feature (contexts, client
certificates, bearer tokens, exec and auth-provider plugins) and the in-cluster
service account, so they are used as they are; this module only turns their
``Configuration`` into what an ``httpx.AsyncClient`` needs. Tokens are read through the
loader's refresh hook on every request, so a rotated service-account token or an
expiring exec-plugin token is picked up without a restart.

Order (the original's): an explicit ``--kubeconfig``, then in-cluster, then
``$KUBECONFIG`` / ``~/.kube/config``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ClusterConfig", "load_cluster_config"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    """Connection facts for one API server."""

    host: str
    """Base URL, e.g. ``https://10.0.0.1:443``."""
    verify: ssl.SSLContext | bool
    token: Callable[[], str | None]
    """Returns the current ``Authorization`` header value (``Bearer …``), or None."""


def _from_configuration(configuration: object) -> ClusterConfig:
    from kubernetes.client import Configuration

    assert isinstance(configuration, Configuration)
    verify: ssl.SSLContext | bool = bool(configuration.verify_ssl)
    if configuration.verify_ssl and (configuration.ssl_ca_cert or configuration.cert_file):
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
        verify = context

    def token() -> str | None:
        hook = configuration.refresh_api_key_hook
        if hook is not None:
            hook(configuration)
        # The loaders file the header value under the auth setting's name ("BearerToken",
        # already prefixed "Bearer "); clients before v12 used the header name instead.
        value = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
            "authorization"
        )
        return str(value) if value else None

    return ClusterConfig(host=str(configuration.host).rstrip("/"), verify=verify, token=token)


def load_cluster_config(kubeconfig: str = "", *, context: str | None = None) -> ClusterConfig:
    """Load the API server's address and credentials.

    Raises:
        RuntimeError: no kubeconfig and not running in a cluster.
    """
    from kubernetes import config as loaders
    from kubernetes.client import Configuration

    configuration = Configuration()
    if kubeconfig:
        loaders.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
        return _from_configuration(configuration)
    try:
        loaders.load_incluster_config(client_configuration=configuration)
    except loaders.ConfigException:
        try:
            loaders.load_kube_config(context=context, client_configuration=configuration)
        except (loaders.ConfigException, OSError) as exc:
            raise RuntimeError(f"no Kubernetes configuration: not in a cluster and no kubeconfig ({exc})") from None
    return _from_configuration(configuration)
