#!/usr/bin/env python3
"""Compares every target's `import` lines with the dependencies Package.swift declares for it.

A module imported but not declared builds only by accident (through another target's dependency); a
dependency declared but never imported is dead weight. Either one fails this check (exit 1), with one line
per finding. The toolchain's own modules (Glibc, Foundation, Dispatch, Synchronization, Testing, ...) are
not dependencies and are skipped. Run from the package root; CI runs it before building (make test).
"""
import json
import os
import re
import subprocess
import sys

SYSTEM = {"Glibc", "Darwin", "Foundation", "FoundationEssentials", "Dispatch", "Synchronization", "Testing", "XCTest",
          "_Concurrency", "Swift", "PackageDescription"}
IMPORT = re.compile(r"^\s*(?:@testable\s+|@_exported\s+|public\s+|internal\s+|package\s+)*import\s+(?:struct\s+|enum\s+|class\s+|func\s+)?(\w+)", re.M)


def main():
    pkg = json.loads(subprocess.run(["swift", "package", "dump-package"], check=True, capture_output=True, text=True).stdout)
    products = {}  # product name -> module names (for packages we depend on, the product is named after its module)
    problems = []
    for t in pkg["targets"]:
        if t["type"] in ("system", "binary", "plugin"):
            continue
        name = t["name"]
        declared = set()
        for d in t.get("dependencies", []):
            for kind in ("byName", "target", "product"):
                if kind in d:
                    declared.add(d[kind][0])
        path = t.get("path") or os.path.join("Tests" if t["type"] == "test" else "Sources", name)
        imported = {}
        for root, _, files in os.walk(path):
            for f in files:
                if not f.endswith(".swift"):
                    continue
                text = open(os.path.join(root, f), encoding="utf-8").read()
                text = re.sub(r'""".*?"""', "", text, flags=re.S)  # Python and shell inside multi-line strings
                for m in IMPORT.finditer(text):
                    imported.setdefault(m.group(1), os.path.join(root, f))
        used = {m for m in imported if m not in SYSTEM and m != name}
        if t["type"] == "regular" and not os.path.isdir(path):
            continue
        c_shims = {d for d in declared if d.startswith("C")}
        for m in sorted(used - declared):
            problems.append(f"{name}: imports {m} ({imported[m]}) but Package.swift does not declare it")
        for m in sorted(declared - used):
            # C targets reached only from C code of the same target, or linked for a shim, are fine when the
            # target has C sources; Swift targets must import what they declare.
            if m in c_shims and any(f.endswith(".c") for _, _, fs in os.walk(path) for f in fs):
                continue
            problems.append(f"{name}: declares {m} but no file imports it")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} import/manifest mismatches (scripts/check-imports.py)", file=sys.stderr)
        return 1
    print("imports match the manifest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
