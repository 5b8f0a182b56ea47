"""The alerting rules (deploy/prometheus/alerts.yml) and the Grafana dashboard
(deploy/grafana/machi-id.json) are well formed and speak only of metrics the nodes export.

The schema checks always run. Prometheus's own checker runs too when ``promtool`` is
installed (on PATH or named by ``PROMTOOL``; .ci/run extracts it from Debian's prometheus
package): ``promtool check rules`` and the rules' unit tests in alerts.test.yml and
alerts.daily.test.yml.

"Exported" means named in docs/metrics.md, the metrics' reference.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
# Rules compared with the day before need two days of samples, evaluated every 5 minutes.
DAILY_RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.daily.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "machi-id.json"
METRICS_DOC = ROOT / "docs" / "metrics.md"

# The alerts issue 17 asks for, one per concern, each fired by a promtool unit case.
ISSUE_ALERTS = {"MachiIdHighErrorRate", "MachiIdHighLatency", "MachiIdDeliveriesFailing",
                "MachiIdDeadLetters", "MachiIdOutboxStale", "MachiIdAuditSealingLag",
                "MachiIdSigningKeyDueForRotation", "MachiIdSignInFailureSpike"}
# Series Prometheus itself adds to every scrape.
PROMETHEUS_OWN = {"up"}
SEVERITIES = {"page", "ticket"}
# A histogram is exported as NAME_bucket, NAME_sum and NAME_count.
SUFFIXES = ("_bucket", "_sum", "_count")


def documented() -> set[str]:
    text = METRICS_DOC.read_text(encoding="utf-8")
    return set(re.findall(r"\b(machi_id_[a-z0-9_]+)", text))


def metrics_in(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: a name before ``{`` or ``[``, or any
    ``machi_id_`` name (``max(machi_id_outbox_pending)``)."""
    selected = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]", expr))
    selected |= set(re.findall(r"\b(machi_id_[a-z0-9_]+)", expr))
    return selected - {"by", "without", "on", "ignoring", "group_left", "group_right"}


def unknown(names: set[str], known: set[str]) -> set[str]:
    def exported(name: str) -> bool:
        if name in known or name in PROMETHEUS_OWN:
            return True
        return any(name.endswith(s) and name.removesuffix(s) in known for s in SUFFIXES)
    return {n for n in names if not exported(n)}


def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_rule_has_name_expression_duration_severity_and_summary():
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert set(document) == {"groups"}
    names = []
    for group in document["groups"]:
        assert group["name"].startswith("machi-id.")
        assert group["rules"]
        for rule in group["rules"]:
            assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"MachiId[A-Za-z]+", rule["alert"])
            assert rule["expr"].strip()
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["for"]
            assert rule["labels"]["severity"] in SEVERITIES
            assert rule["annotations"]["summary"].strip()
            names.append(rule["alert"])
    assert len(names) == len(set(names))


def test_the_issue_s_alerts_are_all_there():
    """Error rate, latency, delivery failures and dead letters, outbox age, audit sealing
    lag, signing key age, sign-in failure spikes."""
    by_metric: dict[str, list[str]] = {}
    for rule in rules():
        for name in metrics_in(rule["expr"]):
            by_metric.setdefault(name, []).append(rule["alert"])
    for needed in ("machi_id_http_requests_total",
                   "machi_id_http_request_duration_seconds_bucket",
                   "machi_id_outbox_messages_total", "machi_id_outbox_oldest_pending_age_seconds",
                   "machi_id_audit_sealing_lag_seconds", "machi_id_signing_key_age_seconds",
                   "machi_id_sign_ins_total"):
        assert needed in by_metric, needed
    expressions = " ".join(rule["expr"] for rule in rules())
    assert 'result="dead"' in expressions and 'result="failed"' in expressions
    assert 'realm="resident",result!="succeeded"' in expressions


def test_rules_name_only_documented_metrics():
    known = documented()
    for rule in rules():
        assert not unknown(metrics_in(rule["expr"]), known), (rule["alert"], rule["expr"])


def rule_cases() -> list[dict]:
    cases = []
    for path in (RULE_TESTS, DAILY_RULE_TESTS):
        tests = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert tests["rule_files"] == ["alerts.yml"], path.name
        cases += [case for test in tests["tests"] for case in test["alert_rule_test"]]
    return cases


def test_rule_tests_cover_the_rules_file():
    alerts = {rule["alert"] for rule in rules()}
    tested = {case["alertname"] for case in rule_cases()}
    assert tested and tested <= alerts


def test_each_of_the_issue_s_alerts_fires_in_a_unit_case_and_stays_quiet_in_another():
    fired = {case["alertname"] for case in rule_cases() if case["exp_alerts"]}
    quiet = {case["alertname"] for case in rule_cases() if not case["exp_alerts"]}
    assert {rule["alert"] for rule in rules()} >= ISSUE_ALERTS
    assert fired >= ISSUE_ALERTS, ISSUE_ALERTS - fired
    assert quiet >= ISSUE_ALERTS, ISSUE_ALERTS - quiet


def test_the_dashboard_is_grafana_json_over_documented_metrics():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "machi-id"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "instance"} <= variables
    known = documented()
    ids, seen = [], set()
    for panel in dashboard["panels"]:
        ids.append(panel["id"])
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] == "timeseries"
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metrics_in(target["expr"])
            assert names, target["expr"]
            assert not unknown(names, known), (panel["title"], target["expr"])
            seen |= names
    assert len(ids) == len(set(ids))
    # Every metric the alerts use can be looked at on the dashboard.
    alerted = {n for rule in rules() for n in metrics_in(rule["expr"])} - PROMETHEUS_OWN
    assert alerted <= seen, alerted - seen


def _promtool() -> str | None:
    return os.environ.get("PROMTOOL") or shutil.which("promtool")


@pytest.mark.skipif(_promtool() is None,
                    reason="promtool is not installed (Debian's prometheus package; .ci/run "
                           "extracts it); the schema checks above ran instead")
@pytest.mark.parametrize("args", [("check", "rules", RULES.name),
                                  ("test", "rules", RULE_TESTS.name),
                                  ("test", "rules", DAILY_RULE_TESTS.name)],
                         ids=["check-rules", "test-rules", "test-daily-rules"])
def test_promtool_accepts_the_rules_and_their_tests_pass(args):
    result = subprocess.run([_promtool(), *args], cwd=RULES.parent,  # noqa: S603
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_name_check_catches_a_metric_nobody_exports():
    known = documented()
    assert {"machi_id_http_request_duration_seconds", "machi_id_outbox_pending"} <= known
    assert unknown(metrics_in('sum(rate(machi_id_made_up_total{kind="x"}[5m]))'), known) \
        == {"machi_id_made_up_total"}
    assert unknown(metrics_in("max(machi_id_outbox_depth)"), known) == {"machi_id_outbox_depth"}
    assert unknown(metrics_in('idp_http_requests_total{job="x"} > 4'), known) \
        == {"idp_http_requests_total"}
    assert not unknown(
        metrics_in("rate(machi_id_http_request_duration_seconds_count[5m])"), known)
