#!/usr/bin/env python3
"""Sums up the PostgreSQL store's group commits from a TRACE log.

Run a program with RUST_LOG=orch_store_postgres::group=trace, its log on stderr, then:

    python3 scripts/group-trace.py LOG

It prints, per lane of the group commit ("Other" and "Graph"): the groups, their batches, the writers'
time and the time of each phase of their transactions; then, second by second, the share of the time
in which some group held the event counter row (from its append, once the group before it had
committed, to the end of its commit). Groups of one batch are committed without a group and are not
in the log, nor are the writes of other processes; one log line per group of each kind is expected.
A program using two schemas at once (two counters) gets the sum of both.
"""

import collections
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
FIELD = re.compile(r"(\w+)=([^\s]+)")
PHASES = ["acquire", "begin", "lock", "apply", "append", "commit", "after"]


def parse(lines):
    """The (lane, committed fields) of each group and the phases of each group, in log order."""
    committed, phases = [], []
    for line in lines:
        line = ANSI.sub("", line)
        if "group committed" in line:
            committed.append(dict(FIELD.findall(line)))
        elif "group phases" in line:
            phases.append(dict(FIELD.findall(line)))
    return committed, phases


def lanes(committed):
    by_lane = collections.defaultdict(lambda: [0, 0, 0.0])
    for c in committed:
        lane = by_lane[c.get("lane", "?")]
        lane[0] += 1
        lane[1] += int(c.get("batches", 0))
        lane[2] += float(c.get("ms", 0))
    for name, (groups, batches, ms) in sorted(by_lane.items()):
        print(f"lane {name}: {groups} groups, {batches} batches, writers busy {ms:,.0f} ms")


def phase_sums(phases):
    sums = {p: sum(float(g.get(p, 0)) for g in phases) for p in PHASES}
    print(f"{len(phases)} groups' phases (ms): " + ", ".join(f"{p} {v:,.0f}" for p, v in sums.items()))


def counter(phases):
    spans = []
    for g in phases:
        try:
            spans.append((int(g["append_at_us"]), int(g["commit_at_us"])))
        except (KeyError, ValueError):
            continue
    spans = [s for s in spans if s[0] and s[1]]
    if not spans:
        print("no append_at_us / commit_at_us in the log: a build from before they were traced?")
        return
    spans.sort(key=lambda s: s[1])
    held = collections.Counter()
    total, previous_end = 0, 0
    for start, end in spans:
        granted = max(start, previous_end)
        previous_end = end
        if end <= granted:
            continue
        total += end - granted
        # Split the span over the seconds it covers.
        t = granted
        while t < end:
            second = t // 1_000_000
            upto = min(end, (second + 1) * 1_000_000)
            held[second] += upto - t
            t = upto
    first, last = spans[0][0], spans[-1][1]
    print(f"counter row held by groups: {total / 1e6:.2f} s of {(last - first) / 1e6:.2f} s")
    base = min(held)
    for second in sorted(held):
        print(f"  second {second - base:>3}: {held[second] / 1e4:5.1f} %")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], errors="replace") as f:
        committed, phases = parse(f)
    if not committed and not phases:
        sys.exit("no group commits in the log (was RUST_LOG=orch_store_postgres::group=trace set?)")
    lanes(committed)
    phase_sums(phases)
    counter(phases)


if __name__ == "__main__":
    main()
