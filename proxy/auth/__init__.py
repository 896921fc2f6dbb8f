"""Tenant authentication: one small ``Authenticator`` protocol, one plugin per ``auth.type``.

``build_authenticator`` picks the plugin from the config; the server calls
``authenticate(AuthRequest)`` on every request and gets a ``Tenant`` or a 400/401/403/503
``ProxyError``. See ``base`` for the namespace rules every plugin shares.
"""

from mtproxy.proxy.auth.apikey import *
from mtproxy.proxy.auth.base import *
from mtproxy.proxy.auth.factory import *
from mtproxy.proxy.auth.header import *
from mtproxy.proxy.auth.jwt import *
from mtproxy.proxy.auth.kubernetes import *

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "NAMESPACE_HEADER",
    "NAMESPACE_PARAM",
    "SYMMETRIC_ALGORITHMS",
    "AccessReviewer",
    "ApiKeyAuthenticator",
    "AuthRequest",
    "Authenticator",
    "HeaderAuthenticator",
    "JWKSFile",
    "JWKSUrl",
    "JWTAuthenticator",
    "JWTKeySource",
    "KubernetesAuthStatistics",
    "KubernetesAuthenticator",
    "ReviewedUser",
    "SharedSecret",
    "Tenant",
    "bearer_token",
    "build_authenticator",
    "parse_jwks",
    "parse_keys_file",
    "requested_namespace",
    "select_namespace",
    "validate_namespace",
]
