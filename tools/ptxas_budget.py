"""Per-kernel resource budgets from ptxas' report (nvcc --resource-usage, or NVRTC with -Xptxas -v).

Usage: python tools/ptxas_budget.py LABEL [--enforce] < ptxas-output

Prints one row per kernel (registers, stack frame, spill stores / loads) and,
with --enforce, exits 1 when a kernel passes the budget: more than
HZ_MAX_REGISTERS (64) registers per thread, or any stack frame or spill
(local memory). `make cuda-check` enforces it for sm_90, with nvcc and with
NVRTC (the compiler CuPy runs at run time).
"""

from __future__ import annotations

import os
import re
import sys

MAX_REGISTERS = int(os.environ.get("HZ_MAX_REGISTERS", "64"))

_ENTRY = re.compile(r"Function properties for (\w+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_REGS = re.compile(r"Used (\d+) registers")


def parse(text: str) -> dict[str, dict[str, int]]:
    """kernel -> {registers, stack, spill_stores, spill_loads} from ptxas' -v lines."""
    out: dict[str, dict[str, int]] = {}
    current = None
    for line in text.splitlines():
        m = _ENTRY.search(line)
        if m:
            current = m.group(1)
            out[current] = {"registers": -1, "stack": -1, "spill_stores": -1, "spill_loads": -1}
            continue
        if current is None:
            continue
        m = _FRAME.search(line)
        if m:
            out[current].update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
        m = _REGS.search(line)
        if m:
            out[current]["registers"] = int(m.group(1))
    return out


def violations(usage: dict[str, dict[str, int]]) -> list[str]:
    bad = []
    for name, u in sorted(usage.items()):
        if u["registers"] < 0 or u["stack"] < 0:
            bad.append(f"{name}: incomplete ptxas report")
        if u["registers"] > MAX_REGISTERS:
            bad.append(f"{name}: {u['registers']} registers > {MAX_REGISTERS}")
        if u["stack"] or u["spill_stores"] or u["spill_loads"]:
            bad.append(f"{name}: local memory ({u['stack']} bytes stack frame, {u['spill_stores']} / "
                       f"{u['spill_loads']} bytes spill stores / loads)")
    return bad


def table(label: str, usage: dict[str, dict[str, int]]) -> str:
    rows = [f"  {label}: {'kernel':<20}{'registers':>10}{'stack':>7}{'spill st/ld':>13}"]
    for name, u in sorted(usage.items()):
        rows.append(f"  {' ' * len(label)}  {name:<20}{u['registers']:>10}{u['stack']:>7}"
                    f"{u['spill_stores']:>7}/{u['spill_loads']:<5}")
    return "\n".join(rows)


def check(label: str, text: str, enforce: bool) -> int:
    usage = parse(text)
    if not usage:
        print(f"  {label}: no ptxas resource report found")
        return 1 if enforce else 0
    print(table(label, usage))
    bad = violations(usage)
    if bad and enforce:
        for b in bad:
            print(f"  BUDGET EXCEEDED ({label}): {b}")
        return 1
    if enforce:
        print(f"  {label}: every kernel within budget (<= {MAX_REGISTERS} registers, no stack frame, no spills)")
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    return check(argv[0], sys.stdin.read(), "--enforce" in argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
