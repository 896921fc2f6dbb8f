"""``mtproxy enforce``: show what the proxy sends for a query, or why it refuses it.

Operators use it to answer "why does my tenant see (or not see) this?": it builds the
namespace's policy from MetricAccess files exactly as the service does, then prints the
rewritten query (or, for match[] endpoints, the ``match[]`` list sent to the backend).
The guardrails are the default config's unless ``--config`` names the service's config
file; every object they deny is printed with the reason, since a denied object grants
nothing. The query and the files are read as the service reads them, through the parser's
depth-and-size guard, so hostile input is a refusal here too, never a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from mtproxy.api import GuardrailsConfig
from mtproxy.proxy import AccessPolicy, ProxyError, RequestParams, enforced_matches
from mtproxy.proxy.enforce import enforce_query
from mtproxy.reconcilers import desired_policy
from mtproxy.reconcilers.filesource import read_directory_files

__all__ = ["explain", "run_enforce"]


def explain(policy: AccessPolicy | None, namespace: str, query: str, *, endpoint: str = "query") -> tuple[bool, str]:
    """(allowed, text): the enforced query or match[] list, or the refusal message."""
    if policy is None:
        return False, f"namespace {namespace!r} has no MetricAccess granting any metric"
    try:
        if endpoint == "query":
            return True, enforce_query(query, policy)
        matches = enforced_matches(
            policy, RequestParams(values={"match[]": (query,)} if query else {}).multi("match[]")
        )
        return True, "\n".join(f"match[]={m}" for m in matches) if matches else "(nothing can match: empty answer)"
    except ProxyError as error:
        return False, f"refused ({error.status} {error.error_type}): {error.message}"


def run_enforce(
    namespace: str,
    files: Sequence[str],
    query: str,
    *,
    endpoint: str,
    out: TextIO,
    guardrails: GuardrailsConfig | None = None,
) -> int:
    """The CLI command; returns the exit status (1 for a refusal or bad input)."""
    contents = read_directory_files(files)
    for problem in contents.problems:
        print(f"problem: {problem}", file=out)
    decision = desired_policy(namespace, contents.objects, guardrails=guardrails or GuardrailsConfig())
    for key, reason in decision.denied:
        print(f"denied: {key}: {reason}", file=out)
    allowed, text = explain(decision.policy, namespace, query, endpoint=endpoint)
    print(text, file=out)
    return 0 if allowed else 1
