"""Ratios to the peers and the issue's targets, from one run's report (pure functions:
bench/run.py calls them on its report dict; tests/unit/test_bench_targets.py checks them).

Which peer figure a row of ours is compared with (``PEER_BASIS``): the token and
device-grant scenarios with the peer's token endpoint (client_credentials), the
resource-server scenarios (introspection, userinfo) with the peer's introspection, at
the same number of connections in the same run. Other scenarios have no peer
counterpart and show ``-``.
"""

from __future__ import annotations

from statistics import mean
from statistics import median

PEER_BASIS = {
    "token_client_credentials": "token",
    "token_refresh": "token",
    "device_polling": "token",
    "device_authorization": "token",
    "introspection": "introspection",
    "userinfo": "introspection",
}
PEER_SCENARIO = {"token": "token_client_credentials", "introspection": "introspection"}
# Worker RSS growth after the soak's first pass that still counts as flat.
RSS_FLAT_MB = 5.0
RSS_FLAT_SHARE = 0.05


def argon2_bound(cost: dict, cores: int) -> float:
    """Sign-ins per second argon2id allows on this machine: ``cores`` ÷ one verification's
    CPU time, unless argon2 alone, one process per core all at once (``per_s``), did
    fewer. Two 64-MiB hashes at once share the caches and the memory bandwidth: where
    they slow each other down, the bound is what they reach, not twice what one does."""
    ceiling = cores / cost["cpu_s"]
    measured = cost.get("per_s")
    return min(ceiling, measured) if measured else ceiling


def ratio(value: float | None, base: float | None, digits: int = 2) -> float | None:
    """``value / base``, or None when either is missing or the base is zero."""
    if value is None or not base:
        return None
    return round(value / base, digits)


def bracketed_ratio(alternating: list[float]) -> float | None:
    """Two nodes against one from rates measured one, two, one, …, one: each two-node
    rate over the mean of the one-node rates either side of it, and the median of those.
    Against a steady drift of the host each bracket is fair; the median keeps one jump
    of the host's speed within the phase from deciding the ratio (a mean of all twos
    over all ones let one slow or fast measurement carry it)."""
    if len(alternating) < 3 or len(alternating) % 2 == 0 or not all(alternating):
        return None
    ones, twos = alternating[0::2], alternating[1::2]
    return median(two / ((ones[k] + ones[k + 1]) / 2) for k, two in enumerate(twos))


def peer_rates(report: dict) -> dict[str, dict[tuple[str, int], float]]:
    """Each peer's req/s per (basis, connections) from the interleaved peer rounds."""
    rates: dict[str, dict[tuple[str, int], float]] = {}
    for round_ in report.get("peers", {}).get("rounds", []):
        basis = PEER_BASIS[round_["scenario"]]
        for name, row in round_["peers"].items():
            rates.setdefault(name, {})[(basis, round_["connections"])] = row["requests_per_s"]
    return rates


def add_peer_ratios(report: dict) -> None:
    """Set ``row["peer_ratios"]`` = {peer: ours ÷ peer} on every row of ours with a basis."""
    rates = peer_rates(report)
    for row in report.get("rows", []):
        basis = PEER_BASIS.get(row["scenario"])
        row["peer_ratios"] = {
            name: ratio(row["requests_per_s"], by.get((basis, row["connections"])))
            for name, by in rates.items()} if basis else {}


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rows(report: dict, backend: str, scenario: str) -> list[dict]:
    return [r for r in report.get("rows", [])
            if r["backend"] == backend and r["scenario"] == scenario]


def _target(name: str, values: list[float | None], shown: str, check) -> dict:
    """met: True when every value is present and passes ``check``, None when none was
    measured, else False."""
    present = [v for v in values if v is not None]
    if not present:
        return {"target": name, "measured": "not measured", "met": None}
    met = len(present) == len(values) and all(check(v) for v in present)
    return {"target": name, "measured": shown, "met": met}


def _levels(rows: list[dict], key, show) -> tuple[list[float | None], str]:
    values = [key(r) for r in rows]
    shown = " / ".join(f"{'-' if v is None else show(v)} at {r['connections']}"
                       for v, r in zip(values, rows, strict=True))
    return values, shown


def _times(v: float) -> str:
    return f"×{v:.2f}"


def _rate(v: float) -> str:
    return f"{v:,.0f}/s"


def targets(report: dict, login_ceiling: float | None = None) -> list[dict]:
    """Every target of issue 16 checked against this run's figures."""
    out = []
    # The targets are on PostgreSQL: rounds against ours on SQLite do not count.
    rounds = [r for r in report.get("peers", {}).get("rounds", [])
              if r.get("backend", "postgres") == "postgres"]

    def round_ratios(scenario: str, peer: str) -> tuple[list[float | None], str]:
        chosen = [r for r in rounds if r["scenario"] == scenario]
        return _levels(chosen, lambda r: r["ratios"].get(peer), _times)

    def ours(backend: str, scenario: str, key, show, connections: int | None = None):
        rows = [r for r in _rows(report, backend, scenario)
                if connections is None or r["connections"] == connections]
        return _levels(rows, key, show)

    out.append(_target("token ≥ 1.5 × dot", *round_ratios("token_client_credentials", "dot"),
                       check=lambda v: v >= 1.5))
    out.append(_target("token ≥ 0.2 × node", *round_ratios("token_client_credentials", "node"),
                       check=lambda v: v >= 0.2))
    out.append(_target("introspection ≥ 0.25 × node's introspection",
                       *round_ratios("introspection", "node"), check=lambda v: v >= 0.25))
    out.append(_target("userinfo ≥ 0.25 × node's introspection",
                       *ours("postgres", "userinfo",
                             lambda r: r.get("peer_ratios", {}).get("node"), _times),
                       check=lambda v: v >= 0.25))
    out.append(_target("code flow ≥ 100 flows/s",
                       *ours("postgres", "code_flow", lambda r: r.get("units_per_s"), _rate),
                       check=lambda v: v >= 100))
    out.append(_target("touch ingest ≥ 30,000 events/s",
                       *ours("postgres", "touch_events", lambda r: r.get("units_per_s"), _rate),
                       check=lambda v: v >= 30000))
    out.append(_target("device polling ≥ 1,000 req/s",
                       *ours("postgres", "device_polling", lambda r: r["requests_per_s"], _rate),
                       check=lambda v: v >= 1000))
    out.append(_target("token p99 at 64 connections ≤ 100 ms",
                       *ours("postgres", "token_client_credentials", lambda r: r["p99_ms"],
                             lambda v: f"{v:.0f} ms", connections=64),
                       check=lambda v: v <= 100))
    out.append(no_errors(report))
    out.append(rss_flat(report.get("soak")))
    def of_bound(row: dict) -> float | None:
        # Each level against the argon2 moments either side of it where they were measured
        # (bench/run.py), else against the run's bound.
        bound = row.get("argon2_bound_per_s") or login_ceiling
        return row["requests_per_s"] / bound if bound else None

    values, shown = ours("postgres", "password_login", of_bound, lambda v: f"{v:.0%}")
    out.append(_target("password sign-in ≥ 90 % of the argon2 bound", values, shown,
                       check=lambda v: v >= 0.9))
    out.append(_target("SQLite token ≥ 0.1 × node",
                       *ours("sqlite", "token_client_credentials",
                             lambda r: r.get("peer_ratios", {}).get("node"), _times),
                       check=lambda v: v >= 0.1))
    out.append(_target("SQLite touch ingest ≥ 10,000 events/s",
                       *ours("sqlite", "touch_events", lambda r: r.get("units_per_s"), _rate),
                       check=lambda v: v >= 10000))
    scale = report.get("scale_out", {}).get("rounds", [])
    out.append(_target("two nodes ≥ one node", [r["ratio"] for r in scale],
                       " / ".join(f"{r['scenario']} ×{fmt(r['ratio'])}" for r in scale),
                       check=lambda v: v >= 1.0))
    return out


def no_errors(report: dict) -> dict:
    """Every measurement of ours: the rows, the peer rounds, the servers, scale-out, soak."""
    counted = [r["errors"] for r in report.get("rows", [])]
    counted += [r["errors"] for key in ("hello", "hello_db")
                for r in report.get(key, {}).values()]
    for round_ in report.get("peers", {}).get("rounds", []):
        counted += [r["errors"] for r in round_["ours"]]
    counted += [r["errors"] for r in report.get("servers", {}).get("rows", [])]
    counted += [r["errors"] for r in report.get("scale_out", {}).get("rows", [])]
    if report.get("soak"):
        counted.append(report["soak"]["errors"])
    if not counted:
        return {"target": "no errors", "measured": "not measured", "met": None}
    total = sum(counted)
    return {"target": "no errors", "met": total == 0,
            "measured": f"{total} in {len(counted)} measurements of ours"}


def rss_flat(soak: dict | None) -> dict:
    """Flat: the largest worker's RSS at the end of the soak is within RSS_FLAT_MB or
    RSS_FLAT_SHARE (whichever is larger) of what it was after the first pass, when
    every scenario had run once (the first pass warms code paths and caches up)."""
    name = "worker RSS flat over the soak"
    if not soak or soak.get("rss_after_first_pass_mb") is None:
        return {"target": name, "measured": "not measured (--soak 300)", "met": None}
    base, last = soak["rss_after_first_pass_mb"], soak["rss_last_mb"]
    allowed = max(RSS_FLAT_MB, base * RSS_FLAT_SHARE)
    return {"target": name, "met": last - base <= allowed,
            "measured": f"{base} MB after the first pass → {last} MB after {soak['seconds']:.0f} s "
                        f"(max {soak['rss_max_mb']} MB; flat = within {allowed:.1f} MB)"}


def format_targets(rows: list[dict]) -> str:
    width = max(len(r["target"]) for r in rows)
    lines = ["Targets (issue 16), from this run:"]
    for r in rows:
        verdict = {True: "met", False: "NOT MET", None: "not measured"}[r["met"]]
        lines.append(f"  {r['target']:<{width}}  {verdict:<12}  {r['measured']}")
    return "\n".join(lines)


def mean_rate(rows: list[dict]) -> float:
    return round(mean(r["requests_per_s"] for r in rows), 1)
