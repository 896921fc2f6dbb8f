"""``auth.type: none``: the tenant is whatever namespace the request names. No authentication.

This plugin trusts the network. Anyone who can reach the proxy can read any tenant's
metrics by sending ``X-Tenant-Namespace: <namespace>`` (or ``?namespace=``), exactly as
in the original. Use it only behind an authenticating gateway that sets
``X-Tenant-Namespace`` itself and strips whatever the client sent; the header wins over
the ``namespace`` parameter, so such a gateway cannot be bypassed with a parameter.
"""

from __future__ import annotations

from mtproxy.proxy.auth.base import AuthRequest, Tenant, requested_namespace
from mtproxy.proxy.errors import Unauthenticated

__all__ = ["HeaderAuthenticator"]

_NO_TENANT_MESSAGE = "Authentication failed: no tenant information found in request"


class HeaderAuthenticator:
    """Takes the tenant from ``X-Tenant-Namespace``, else the ``namespace`` parameter."""

    async def authenticate(self, request: AuthRequest) -> Tenant:
        """The named namespace; the original's 401 message when none is named.

        Raises:
            Unauthenticated: no namespace in the request.
            BadRequest: the name is not a valid namespace name.
        """
        namespace = requested_namespace(request)
        if namespace is None:
            raise Unauthenticated(_NO_TENANT_MESSAGE)
        return Tenant(namespace=namespace, subject="header")
