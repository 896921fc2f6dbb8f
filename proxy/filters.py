"""Answers the proxy filters itself: rules and alerts, reduced to what a tenant may see.

These endpoints take no selector, so they cannot be rewritten; the proxy filters their
answers instead, and for exactly that reason filters conservatively:

- ``/api/v1/alerts``: an alert is visible when the policy admits the series
  ``ALERTS{alertname=…, alertstate=…, <its labels>}`` that Prometheus keeps for it;
- ``/api/v1/rules``: alerting rules keep only visible alerts and are shown when one is
  left; recording rules are shown when the policy admits their output series; groups left
  empty are removed; rule expressions are blanked, since they name other series.

``/api/v1/metadata`` is built, not filtered: see ``mtproxy.proxy.metadata``.
"""

from __future__ import annotations

import json
from typing import Any

from mtproxy.proxy.policy import AccessPolicy

__all__ = ["filter_alerts", "filter_rules"]


def _dump(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _alert_visible(alert: Any, policy: AccessPolicy) -> bool:
    if not isinstance(alert, dict):
        return False
    labels = dict(alert.get("labels") or {})
    labels["__name__"] = "ALERTS"
    state = alert.get("state")
    if isinstance(state, str):
        labels["alertstate"] = state
    return policy.admits({k: str(v) for k, v in labels.items()})


def filter_alerts(body: bytes, *, policy: AccessPolicy) -> bytes:
    """Keep only alerts whose ALERTS series the policy admits."""
    document = json.loads(body)
    data = document.get("data")
    if isinstance(data, dict) and isinstance(data.get("alerts"), list):
        data["alerts"] = [a for a in data["alerts"] if _alert_visible(a, policy)]
    return _dump(document)


def filter_rules(body: bytes, *, policy: AccessPolicy) -> bytes:
    """Keep only visible rules (and groups that still have one); blank every expression."""
    document = json.loads(body)
    data = document.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        return body
    groups = []
    for group in data["groups"]:
        if not isinstance(group, dict):
            continue
        rules = []
        for rule in group.get("rules") or []:
            if not isinstance(rule, dict):
                continue
            if rule.get("type") == "alerting":
                alerts = [a for a in rule.get("alerts") or [] if _alert_visible(a, policy)]
                if not alerts:
                    continue
                rule = {**rule, "alerts": alerts, "query": ""}
            else:
                output = {k: str(v) for k, v in (rule.get("labels") or {}).items()}
                output["__name__"] = str(rule.get("name", ""))
                if not policy.admits(output):
                    continue
                rule = {**rule, "query": ""}
            rules.append(rule)
        if rules:
            groups.append({**group, "rules": rules})
    data["groups"] = groups
    return _dump(document)
