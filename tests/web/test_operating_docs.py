"""The README's Prometheus samples: the scrape config and alert rules parse, and every series and label they name
is one Passgate serves, so the rules an operator copies fire on real numbers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase

from passgate import metrics
from tests.web.conftest import Server

README = Path(__file__).resolve().parents[2] / "README.md"
SELECTOR = re.compile(r"\b(passgate_\w+|up)(\{([^}]*)\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def yaml_blocks() -> list[Any]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)]


def served_series() -> dict[str, tuple[str, ...]]:
    """Every series name Passgate's metrics expose, with the labels it carries."""
    series = {}
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for suffix in SUFFIXES[metric._type]:
                extra = ("le",) if suffix == "_bucket" else ()
                series[metric._name + suffix] = (*metric._labelnames, *extra)
    return series


async def test_the_alert_rules_name_only_series_and_labels_passgate_serves(server: Server) -> None:
    [scrape] = [block for block in yaml_blocks() if isinstance(block, dict) and "scrape_configs" in block]
    [rules] = [block for block in yaml_blocks() if isinstance(block, dict) and "groups" in block]
    job = scrape["scrape_configs"][0]["job_name"]
    series = served_series()
    async with server.client() as client:
        routes = set((await client.get("/openapi.json")).json()["paths"])
    named = set()
    for rule in rules["groups"][0]["rules"]:
        assert rule["alert"].startswith("Passgate") and rule["annotations"]["summary"]
        for name, _braces, matchers in SELECTOR.findall(rule["expr"]):
            found = dict((label, value) for label, _op, value in MATCHER.findall(matchers))
            if name == "up":
                assert found == {"job": job}
                continue
            assert name in series, name
            assert set(found) <= set(series[name]), (name, found)
            if "route" in found:
                assert found["route"] in routes
            named.add(name.removesuffix("_total").removesuffix("_bucket"))
    # Failures, errors, latency, limits, mail, metadata and webhooks each have a rule.
    assert {
        "passgate_requests",
        "passgate_storage_errors",
        "passgate_ceremonies",
        "passgate_request_duration_seconds",
        "passgate_rate_limit_refusals",
        "passgate_mail_failed",
        "passgate_mds_age_seconds",
        "passgate_webhook_deliveries",
        "passgate_webhook_delivery_lag_seconds",
    } <= named
