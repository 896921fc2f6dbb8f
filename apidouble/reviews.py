"""TokenReview and SubjectAccessReview answers, taken from a configurable rules table.

The double stands in for the authenticator and authorizer behind the real server's
``authentication.k8s.io/v1`` TokenReview and ``authorization.k8s.io/v1``
SubjectAccessReview: a POST returns the request with ``status`` filled in and stores
nothing, as the real server does.

- **TokenReview**: a token listed in :attr:`ReviewRules.tokens` answers
  ``authenticated: true`` with that user (``username``, ``uid``, ``groups``, ``extra``) and
  the requested audiences; any other token answers an empty ``user`` and an ``error``, with
  ``authenticated`` left out (the real server omits false), so ``authenticated`` reads false.
- **SubjectAccessReview**: the first :class:`AccessRule` (in order) whose subjects, verbs,
  API groups, resources, subresources, namespaces and names all match decides; ``"*"``
  matches anything. ``allowed: false`` from a matching rule also sets ``denied: true``
  (an explicit deny); no match answers ``allowed: false`` alone, as RBAC does.
  Non-resource requests match rules listing their path in ``non_resource_paths``; such a
  rule is about paths only and matches no resource request (as an RBAC rule with
  ``nonResourceURLs`` does).

Not reproduced: RBAC objects are stored but never consulted; the caller of a review is not
itself authorised.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AccessRule", "ReviewRules", "UserInfo", "answer_subject_access_review", "answer_token_review"]


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInfo:
    """Who a token belongs to."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the ``status.user`` form."""
        rendered: dict[str, Any] = {"username": self.username}
        if self.uid:
            rendered["uid"] = self.uid
        if self.groups:
            rendered["groups"] = list(self.groups)
        if self.extra:
            rendered["extra"] = {key: list(values) for key, values in self.extra.items()}
        return rendered


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessRule:
    """One row of the authorisation table; ``"*"`` in any field matches everything."""

    users: tuple[str, ...] = ()
    """Usernames this rule applies to."""
    groups: tuple[str, ...] = ()
    """User groups this rule applies to (a subject matches if its user or any group is listed)."""
    verbs: tuple[str, ...] = ("*",)
    api_groups: tuple[str, ...] = ("*",)
    resources: tuple[str, ...] = ("*",)
    subresources: tuple[str, ...] = ("*",)
    namespaces: tuple[str, ...] = ("*",)
    names: tuple[str, ...] = ("*",)
    non_resource_paths: tuple[str, ...] = ()
    allowed: bool = True
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.users and not self.groups:
            raise ValueError("AccessRule needs users or groups (use '*' for everyone)")

    def applies_to(self, *, user: str, groups: tuple[str, ...]) -> bool:
        """Return whether the subject is covered by this rule."""
        return "*" in self.users or user in self.users or "*" in self.groups or bool(set(groups) & set(self.groups))

    def matches_resource(self, attributes: Mapping[str, Any]) -> bool:
        """Return whether ``spec.resourceAttributes`` fall under this rule."""
        def hit(allowed: tuple[str, ...], value: str) -> bool:
            return "*" in allowed or value in allowed

        if self.non_resource_paths:
            return False
        return (
            hit(self.verbs, str(attributes.get("verb", "")))
            and hit(self.api_groups, str(attributes.get("group", "")))
            and hit(self.resources, str(attributes.get("resource", "")))
            and hit(self.subresources, str(attributes.get("subresource", "")))
            and hit(self.namespaces, str(attributes.get("namespace", "")))
            and hit(self.names, str(attributes.get("name", "")))
        )

    def matches_non_resource(self, attributes: Mapping[str, Any]) -> bool:
        """Return whether ``spec.nonResourceAttributes`` fall under this rule."""
        path = str(attributes.get("path", ""))
        verb = str(attributes.get("verb", ""))
        path_hit = "*" in self.non_resource_paths or path in self.non_resource_paths
        return path_hit and ("*" in self.verbs or verb in self.verbs)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReviewRules:
    """The tokens the double knows and the ordered authorisation table."""

    tokens: Mapping[str, UserInfo] = field(default_factory=dict)
    access: tuple[AccessRule, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ReviewRules:
        """Build rules from JSON/YAML data: ``{tokens: {tok: {username, groups}}, access: [...]}``.

        ``access`` entries use the :class:`AccessRule` field names in camelCase or snake_case.
        """
        tokens = {
            str(token): UserInfo(
                username=str(user["username"]),
                uid=str(user.get("uid", "")),
                groups=tuple(user.get("groups", ())),
                extra={k: tuple(v) for k, v in (user.get("extra") or {}).items()},
            )
            for token, user in (data.get("tokens") or {}).items()
        }
        aliases = {"apiGroups": "api_groups", "nonResourcePaths": "non_resource_paths"}
        rules = []
        for entry in data.get("access") or []:
            options: dict[str, Any] = {}
            for key, value in entry.items():
                name = aliases.get(key, key)
                options[name] = tuple(value) if isinstance(value, list) else value
            rules.append(AccessRule(**options))
        return cls(tokens=tokens, access=tuple(rules))


def answer_token_review(rules: ReviewRules, review: dict[str, Any]) -> dict[str, Any]:
    """Return the TokenReview with ``status`` filled in from the rules."""
    answered = copy.deepcopy(review)
    spec = answered.get("spec") or {}
    user = rules.tokens.get(str(spec.get("token", "")))
    if user is None:
        answered["status"] = {"user": {}, "error": "invalid bearer token"}
    else:
        answered["status"] = {"authenticated": True, "user": user.to_json(),
                              "audiences": list(spec.get("audiences") or [])}
    return answered


def answer_subject_access_review(rules: ReviewRules, review: dict[str, Any]) -> dict[str, Any]:
    """Return the SubjectAccessReview with ``status`` filled in from the rules."""
    answered = copy.deepcopy(review)
    spec = answered.get("spec") or {}
    user = str(spec.get("user", ""))
    groups = tuple(spec.get("groups") or ())
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    for rule in rules.access:
        if not rule.applies_to(user=user, groups=groups):
            continue
        if resource is not None and rule.matches_resource(resource):
            break
        if non_resource is not None and rule.matches_non_resource(non_resource):
            break
    else:
        answered["status"] = {"allowed": False}
        return answered
    status: dict[str, Any] = {"allowed": rule.allowed}
    if not rule.allowed:
        status["denied"] = True
    if rule.reason:
        status["reason"] = rule.reason
    answered["status"] = status
    return answered
