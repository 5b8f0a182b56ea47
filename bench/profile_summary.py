"""Summarise py-spy ``--format raw`` profiles (collapsed stacks) of the workers.

    .venv/bin/python bench/profile_summary.py bench/results/profiles/<stamp>-*.txt

Prints the share of samples (all threads of all given workers) spent inside
each frame (inclusive) and at the top of the stack (self), so the evidence in
docs/performance.md can be reproduced. Idle threads (gthread's pool waiting on
its queue, the poller) are counted separately and left out of the shares.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

IDLE = re.compile(r"(wait \(threading\.py|_worker \(concurrent/futures/thread\.py.*;get \(|"
                  r"select \(selectors\.py|sleep \(gunicorn)")


def load(paths: list[Path]) -> list[tuple[list[str], int]]:
    stacks = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks.append((stack.split(";"), int(count)))
    return stacks


def frame_name(frame: str) -> str:
    # "function (path/to/file.py:123)" → "function (file.py)"
    match = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not match:
        return frame
    function, path = match.groups()
    parts = path.split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1:]
    elif "idp" in parts:
        parts = parts[parts.index("idp"):]
    return f"{function} ({'/'.join(parts[-3:])})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", default=None, help="only frames matching this regex")
    args = parser.parse_args(argv)
    stacks = load(args.profiles)
    busy = [(s, c) for s, c in stacks if not IDLE.search(";".join(s))]
    total = sum(c for _, c in busy) or 1
    idle = sum(c for _, c in stacks) - total
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for stack, count in busy:
        names = [frame_name(f) for f in stack]
        for name in set(names):
            inclusive[name] += count
        own[names[-1]] += count
    print(f"{total} busy samples ({idle} idle) in {len(args.profiles)} profiles\n")
    print("inclusive")
    pattern = re.compile(args.match) if args.match else None
    shown = 0
    for name, count in inclusive.most_common():
        if pattern and not pattern.search(name):
            continue
        print(f"  {100 * count / total:5.1f}%  {name}")
        shown += 1
        if shown >= args.top:
            break
    print("\nself")
    for name, count in own.most_common(args.top // 2):
        print(f"  {100 * count / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
