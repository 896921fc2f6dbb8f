"""TokenReview and SubjectAccessReview through the runtime client, for ``auth.type: kubernetes``.

The proxy's Kubernetes authenticator only knows the ``AccessReviewer`` protocol; this is
the implementation the composition root hands it, so ``proxy/`` never imports the
Kubernetes client.
"""

from __future__ import annotations

from mtproxy.controller import KubeClient, Resource
from mtproxy.proxy.auth import ReviewedUser

__all__ = ["KubernetesReviewer"]

TOKEN_REVIEWS = Resource(group="authentication.k8s.io", version="v1", plural="tokenreviews", namespaced=False)
ACCESS_REVIEWS = Resource(group="authorization.k8s.io", version="v1", plural="subjectaccessreviews", namespaced=False)


class KubernetesReviewer:
    """Asks the API server who a token belongs to, and what that user may do."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client

    async def review_token(self, token: str) -> ReviewedUser | None:
        """The token's user, or None when the API server does not authenticate it."""
        answer = await self._client.create(
            TOKEN_REVIEWS,
            None,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
        )
        status = answer.get("status") or {}
        if not status.get("authenticated"):
            return None
        user = status.get("user") or {}
        return ReviewedUser(
            username=str(user.get("username", "")),
            uid=str(user.get("uid", "")),
            groups=tuple(str(g) for g in user.get("groups") or ()),
            extra={str(k): tuple(str(x) for x in v) for k, v in (user.get("extra") or {}).items()},
        )

    async def can_access(self, user: ReviewedUser, *, namespace: str, verb: str, group: str, resource: str) -> bool:
        """Whether ``user`` may ``verb`` ``group/resource`` in ``namespace``."""
        answer = await self._client.create(
            ACCESS_REVIEWS,
            None,
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": user.username,
                    "uid": user.uid,
                    "groups": list(user.groups),
                    "extra": {k: list(v) for k, v in user.extra.items()},
                    "resourceAttributes": {"namespace": namespace, "verb": verb, "group": group, "resource": resource},
                },
            },
        )
        return bool((answer.get("status") or {}).get("allowed"))
