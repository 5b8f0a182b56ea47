"""The benchmark's ratios to the peers and its Targets block (bench/targets.py), on
hand-made reports: what is compared with what, and when a target counts as met."""

from __future__ import annotations

from statistics import mean

import pytest

from bench import targets


def row(backend: str, scenario: str, connections: int, rps: float, **extra) -> dict:
    return {"backend": backend, "scenario": scenario, "connections": connections,
            "requests_per_s": rps, "p99_ms": extra.pop("p99_ms", 50.0),
            "errors": extra.pop("errors", 0), **extra}


def peer_round(scenario: str, connections: int, ours: list[float], **peers: float) -> dict:
    rate = sum(ours) / len(ours)
    return {"scenario": scenario, "connections": connections, "ours_requests_per_s": rate,
            "ours": [row("ours", scenario, connections, r) for r in ours],
            "peers": {name: row(name, scenario, connections, r) for name, r in peers.items()},
            "ratios": {name: targets.ratio(rate, r) for name, r in peers.items()}}


def by_name(results: list[dict]) -> dict[str, dict]:
    return {r["target"]: r for r in results}


def test_the_argon2_bound_is_the_lower_of_the_cpu_ceiling_and_argon2_alone_on_every_core():
    """Test that the sign-in bound is cores ÷ one verification's CPU time, unless argon2
    alone on every core at once measured fewer (hashes slowing each other down), and
    the CPU ceiling when argon2 alone was not measured."""
    assert targets.argon2_bound({"cpu_s": 0.2, "per_s": 8.0}, 2) == 8.0
    assert targets.argon2_bound({"cpu_s": 0.2, "per_s": 12.0}, 2) == 10.0
    assert targets.argon2_bound({"cpu_s": 0.25}, 2) == 8.0


def test_ratio_is_none_without_a_base():
    """Test that a missing or zero base gives no ratio rather than an error or infinity."""
    assert targets.ratio(300, 200) == 1.5
    assert targets.ratio(300, 0) is None
    assert targets.ratio(None, 200) is None
    assert targets.ratio(1, 3, digits=3) == 0.333


def test_rows_are_compared_with_the_peer_endpoint_of_their_kind_at_the_same_connections():
    """Test that token and device rows compare with the peer's token endpoint, userinfo
    with its introspection, per connection level, and other scenarios with nothing."""
    report = {
        "peers": {"rounds": [peer_round("token_client_credentials", 16, [100], node=1000, dot=50),
                             peer_round("token_client_credentials", 64, [100], node=500, dot=50),
                             peer_round("introspection", 16, [100], node=2000, dot=100)]},
        "rows": [row("postgres", "device_polling", 64, 250),
                 row("sqlite", "userinfo", 16, 400),
                 row("postgres", "code_flow", 16, 90),
                 row("postgres", "userinfo", 64, 400)],
    }
    targets.add_peer_ratios(report)
    polling, userinfo, flow, userinfo64 = report["rows"]
    assert polling["peer_ratios"] == {"node": 0.5, "dot": 5.0}
    assert userinfo["peer_ratios"] == {"node": 0.2, "dot": 4.0}
    assert flow["peer_ratios"] == {}
    assert userinfo64["peer_ratios"] == {"node": None, "dot": None}


def test_every_target_is_not_measured_on_an_empty_report():
    """Test that a run without the figures says "not measured", never "met"."""
    results = targets.targets({"rows": []})
    assert len(results) == 14
    assert {r["met"] for r in results} == {None}
    assert "NOT MET" not in targets.format_targets(results)


def test_a_target_is_met_only_when_every_connection_level_meets_it():
    """Test that one level below the bound makes the target not met, and shows both."""
    report = {"peers": {"rounds": [
        peer_round("token_client_credentials", 16, [160, 140], dot=100, node=700),
        peer_round("token_client_credentials", 64, [140, 140], dot=100, node=600),
    ]}, "rows": []}
    results = by_name(targets.targets(report))
    assert results["token ≥ 1.5 × dot"]["met"] is False
    assert results["token ≥ 1.5 × dot"]["measured"] == "×1.50 at 16 / ×1.40 at 64"
    assert results["token ≥ 0.2 × node"]["met"] is True


def test_rate_latency_and_login_targets_read_the_postgres_rows():
    """Test the absolute targets against PostgreSQL's rows and SQLite's own bounds."""
    report = {"rows": [
        row("postgres", "code_flow", 16, 330, units_per_s=110),
        row("postgres", "code_flow", 64, 300, units_per_s=100),
        row("sqlite", "code_flow", 64, 30, units_per_s=10),
        row("postgres", "touch_events", 64, 290, units_per_s=29000),
        row("sqlite", "touch_events", 64, 110, units_per_s=11000),
        row("postgres", "device_polling", 16, 1200),
        row("postgres", "token_client_credentials", 16, 900, p99_ms=400),
        row("postgres", "token_client_credentials", 64, 900, p99_ms=99),
        row("postgres", "password_login", 16, 9.0),
        row("postgres", "password_login", 64, 8.0),
    ]}
    results = by_name(targets.targets(report, login_ceiling=9.0))
    assert results["code flow ≥ 100 flows/s"]["met"] is True
    assert results["touch ingest ≥ 30,000 events/s"]["met"] is False
    assert results["SQLite touch ingest ≥ 10,000 events/s"]["met"] is True
    assert results["device polling ≥ 1,000 req/s"]["met"] is True
    assert results["token p99 at 64 connections ≤ 100 ms"]["met"] is True
    assert results["token p99 at 64 connections ≤ 100 ms"]["measured"] == "99 ms at 64"
    login = results["password sign-in ≥ 90 % of the argon2 bound"]
    assert login["met"] is False
    assert login["measured"] == "100% at 16 / 89% at 64"


def test_errors_anywhere_in_our_measurements_fail_the_no_errors_target():
    """Test that errors in the peer rounds, servers, scale-out or soak count, and a
    peer's own errors do not."""
    clean = {"rows": [row("postgres", "userinfo", 16, 100)],
             "peers": {"rounds": [peer_round("introspection", 16, [100], node=500)]}}
    clean["peers"]["rounds"][0]["peers"]["node"]["errors"] = 800
    assert targets.no_errors(clean)["met"] is True
    for section in ({"servers": {"rows": [row("gunicorn-sync", "userinfo", 16, 9, errors=1)]}},
                    {"scale_out": {"rows": [row("two-nodes", "userinfo", 64, 9, errors=2)]}},
                    {"soak": {"errors": 3}}):
        assert targets.no_errors({**clean, **section})["met"] is False


def test_rss_is_flat_when_it_grows_little_after_the_first_pass():
    """Test the soak's verdict: growth after every scenario has run once is what counts."""
    soak = {"seconds": 300, "rss_first_mb": 90.0, "rss_after_first_pass_mb": 104.0,
            "rss_last_mb": 108.0, "rss_max_mb": 108.0}
    assert targets.rss_flat(soak)["met"] is True
    assert targets.rss_flat({**soak, "rss_last_mb": 120.0})["met"] is False
    assert targets.rss_flat(None)["met"] is None


def test_two_nodes_must_not_be_slower_than_one_in_any_scenario():
    """Test the scale-out target over its rounds."""
    rounds = [{"scenario": "token_client_credentials", "ratio": 1.4},
              {"scenario": "touch_events", "ratio": 0.97}]
    result = by_name(targets.targets({"scale_out": {"rounds": rounds}}))["two nodes ≥ one node"]
    assert result["met"] is False
    assert result["measured"] == "token_client_credentials ×1.40 / touch_events ×0.97"


def test_two_nodes_against_one_is_the_median_of_each_two_over_the_ones_beside_it():
    """Test the scale-out ratio: each two-node rate over the mean of the one-node rates either
    side of it, the median of those; one jump of the host within the phase does not decide
    it, and a phase that is not one, two, …, one (or where nothing completed) has none."""
    assert targets.bracketed_ratio([100, 110, 100, 110, 100, 110, 100]) == pytest.approx(1.1)
    # Two nodes ×1.05 throughout, and the host speeds up by half for the last one-node
    # measurement: the mean of the twos over the mean of the ones says ×0.93, the brackets
    # ×1.05, ×1.05 and ×0.84.
    rates = [100, 105, 100, 105, 100, 105, 150]
    assert targets.bracketed_ratio(rates) == pytest.approx(1.05)
    assert mean(rates[1::2]) / mean(rates[0::2]) == pytest.approx(105 / 112.5)
    # … or slows down by a third for one two-node measurement in the middle.
    assert targets.bracketed_ratio([100, 105, 100, 70, 100, 105, 100]) == pytest.approx(1.05)
    assert targets.bracketed_ratio([100, 90, 100]) == pytest.approx(0.9)
    assert targets.bracketed_ratio([100, 110, 100, 110]) is None
    assert targets.bracketed_ratio([100, 0, 100]) is None
    assert targets.bracketed_ratio([100]) is None


def test_peer_rounds_against_ours_on_sqlite_do_not_count_for_the_postgres_targets():
    """Test that a run whose peers were measured against SQLite checks no peer target."""
    sqlite_round = {**peer_round("token_client_credentials", 16, [100], node=200, dot=10),
                    "backend": "sqlite"}
    results = by_name(targets.targets({"peers": {"rounds": [sqlite_round]}, "rows": []}))
    assert results["token ≥ 1.5 × dot"]["met"] is None
    assert results["token ≥ 0.2 × node"]["met"] is None


def test_each_sign_in_level_is_held_to_the_argon2_moments_either_side_of_it():
    """Test that a sign-in level carrying the bound of the argon2 moments measured right
    before and after it (bench/run.py) is held to that bound, not the run's, and that a
    level without one falls back to the run's bound."""
    report = {"rows": [
        dict(row("postgres", "password_login", 16, 9.0), argon2_bound_per_s=10.0),
        row("postgres", "password_login", 64, 8.2),
    ]}
    login = by_name(targets.targets(report, login_ceiling=9.0))[
        "password sign-in ≥ 90 % of the argon2 bound"]
    assert login["measured"] == "90% at 16 / 91% at 64"
    assert login["met"] is True
    report["rows"][1]["argon2_bound_per_s"] = 9.5
    login = by_name(targets.targets(report, login_ceiling=9.0))[
        "password sign-in ≥ 90 % of the argon2 bound"]
    assert login["measured"] == "90% at 16 / 86% at 64" and login["met"] is False
