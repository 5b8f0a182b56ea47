"""The de-identification rules of the city export, as pure functions over counts.

- ``suppress``: k-anonymity of a breakdown, with complementary suppression so a hidden
  value is never the difference between the total and the published ones.
- ``diverse``: l-diversity of a sensitive attribute: a breakdown of a sensitive category
  (income band, household …) is published only if at least l distinct known values
  remain after suppression, so a k-anonymous group that shares one value does not give
  it away (Machanavajjhala et al., "l-Diversity: Privacy Beyond k-Anonymity", 2007,
  distinct l-diversity).
"""

from __future__ import annotations

UNKNOWN = "unknown"


def suppress(counts: dict[str, int], k: int) -> dict[str, int]:
    """Cells with at least k, after primary and complementary suppression."""
    kept = {value: n for value, n in counts.items() if n >= k}
    hidden = sum(n for value, n in counts.items() if value not in kept)
    for value in sorted(kept, key=lambda v: (kept[v], v)):
        if hidden == 0 or hidden >= k:
            break
        hidden += kept.pop(value)
    return dict(sorted(kept.items()))


def diverse(published: dict[str, int], l_diversity: int) -> bool:
    """Whether a published sensitive breakdown shows at least l distinct known values."""
    return sum(1 for value in published if value != UNKNOWN) >= l_diversity


def breakdown(counts: dict[str, int], k: int, l_diversity: int,
              sensitive: bool) -> dict[str, int] | None:
    """What is published of one breakdown (None: nothing)."""
    published = suppress(counts, k)
    if sensitive and not diverse(published, l_diversity):
        return None
    return published or None


def at_least(n: int, k: int) -> int | None:
    """A count of people, published only when it is at least k."""
    return n if n >= k else None
