#!/usr/bin/env python3
"""Checks that each published crate's `rust-version` is true of the lock.

For every published workspace member, and for its default features and each
of its features on its own, lists the locked normal and build dependencies
(`cargo tree --locked`, which resolves features as a user's build would) and
finds the highest `rust-version` any of them declares. That is what the
lock really needs:

- with the default features, it must not exceed the crate's `rust-version`;
- a feature may need more only when the crate says so, in
  `[package.metadata.msrv] features = { NAME = "1.xx" }`, and then exactly
  that (the docs repeat it in the crate's feature table).

Only one toolchain is installed here (and no other can be fetched), so the
check reads what the locked dependencies declare rather than building with
an old compiler. Run from the workspace root: `python3 scripts/check-msrv.py`.
"""

import json
import subprocess
import sys


def version(text):
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def show(v):
    return ".".join(str(part) for part in (v[:2] if v[2:] == (0,) else v))


def cargo(*args):
    return subprocess.run(
        ["cargo", *args, "--locked"], check=True, capture_output=True, text=True
    ).stdout


def main():
    metadata = json.loads(cargo("metadata", "--format-version", "1"))
    declared_by = {
        (p["name"], p["version"]): p.get("rust_version") for p in metadata["packages"]
    }
    members = [p for p in metadata["packages"] if p["id"] in metadata["workspace_members"]]

    def needs(package, features):
        """The highest rust-version in the package's dependency tree, and who."""
        args = ["tree", "-p", package["name"], "-e", "normal,build"]
        args += ["--prefix", "none", "--format", "{p}"]
        args += features
        best, by = (0, 0, 0), "nothing"
        for line in set(cargo(*args).splitlines()):
            fields = line.split()
            if len(fields) < 2 or fields[0] == package["name"]:
                continue
            name, ver = fields[0], fields[1].lstrip("v")
            rv = declared_by.get((name, ver))
            if rv and version(rv) > best:
                best, by = version(rv), f"{name} {ver}"
        return best, by

    failed = False
    for package in members:
        if package.get("publish") == []:
            continue  # test and bench crates: users never build them
        declared = version(package.get("rust_version") or "0")
        exceptions = ((package.get("metadata") or {}).get("msrv") or {}).get("features", {})
        checks = [("default features", [], declared)]
        for feature in sorted(package["features"]):
            if feature == "default":
                continue
            allowed = version(exceptions.get(feature, show(declared)))
            checks.append((f"--features {feature}", ["--no-default-features", "--features", feature], allowed))
        for label, args, allowed in checks:
            need, by = needs(package, args)
            need = max(need, declared)  # the crate's own rust-version counts too
            ok = need == allowed if label != "default features" else need <= allowed
            if label != "default features" and need < allowed:
                ok = False  # a stale exception: the feature no longer needs it
            failed |= not ok
            print(
                f"{'ok  ' if ok else 'FAIL'} {package['name']} {label}: needs {show(need)}"
                f" (highest: {by}), declared {show(allowed)}"
            )
    if failed:
        print(
            "error: make `rust-version` (or the feature's [package.metadata.msrv] entry) "
            "what the lock needs, or pin the dependency lower",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
