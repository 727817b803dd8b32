#!/usr/bin/env python3
"""Collects benchmark lines (one JSON object per line, from every language's bench) and writes
docs/benchmarks.md: each measurement next to its baseline, the ratio, and its target.

Usage: bench_report.py RESULTS.jsonl... [--out docs/benchmarks.md]
A line: {"id", "what", "unit", "bridge", "baseline", "baseline_name", "ratio", "target",
         "valid", "notes", "delta"?}
"""
import datetime
import json
import os
import platform
import re
import subprocess
import sys


def machine() -> str:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1048576:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} cores ({cpu}), {mem}, {platform.system()} {platform.release()}, {rustc}"


def verdict(r: dict) -> str:
    if not r.get("valid", True):
        return "INVALID"
    t = r.get("target", "")
    ratio = r.get("ratio")
    if ratio is None:
        return "n/a"
    m = re.fullmatch(r"\s*>=\s*([\d.]+)\s*×?\s*", t)
    if m:
        return "met" if ratio >= float(m.group(1)) else "missed"
    m = re.fullmatch(r"\s*<=\s*([\d.]+)\s*×?\s*", t)
    if m:
        return "met" if ratio <= float(m.group(1)) else "missed"
    m = re.fullmatch(r"\s*<=\s*raw\s*\+\s*([\d.]+)\s*µs\s*", t)
    if m:
        return "met" if r.get("delta", float("inf")) <= float(m.group(1)) else "missed"
    m = re.fullmatch(r"\s*([\d.]+)\s*–\s*([\d.]+).*", t)
    if m:
        return "met" if float(m.group(1)) <= ratio <= float(m.group(2)) else "missed"
    return "?"


def fmt(x) -> str:
    if isinstance(x, (int, float)):
        return f"{x:,.3g}" if abs(x) < 100 else f"{x:,.0f}"
    return str(x)


def main(argv):
    out = "docs/benchmarks.md"
    files = []
    it = iter(argv)
    for a in it:
        if a == "--out":
            out = next(it)
        else:
            files.append(a)
    rows = []
    for path in files:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    rows.append(json.loads(line))
    if not rows:
        sys.exit("bench_report: no results")
    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}.",
        "",
        "Each line compares the bridge with a baseline run on the same machine in the same run;",
        "absolute numbers vary with the machine's load, ratios much less. A run where a message was",
        "lost or a slow consumer was reported is marked INVALID.",
        "",
        "| measurement | unit | bridge | baseline | baseline is | ratio | target | verdict | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r.get("what", r["id"]), r.get("unit", ""), fmt(r.get("bridge")), fmt(r.get("baseline")),
            r.get("baseline_name", ""), fmt(r.get("ratio")), r.get("target", ""), verdict(r),
            r.get("notes", "")))
    table = "\n".join(lines) + "\n"
    notes_path = os.path.join(os.path.dirname(out) or ".", "benchmarks-analysis.md")
    if os.path.exists(notes_path):
        with open(notes_path) as f:
            table += "\n" + f.read()
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
