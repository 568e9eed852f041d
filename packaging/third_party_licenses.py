#!/usr/bin/env python3
"""Writes THIRD-PARTY-LICENSES.txt: every Rust crate compiled into the
`cutout` executable, with its licence and the licence texts it publishes.

Usage: third_party_licenses.py [--target TRIPLE] [--output FILE]

The crate list comes from `cargo metadata --locked`, so it matches
Cargo.lock exactly. Only crates that end up inside the executable count:
the walk starts at `cutout`, follows normal dependencies only, and stops at
build scripts' dependencies, dev-dependencies and procedural macros, which
run on the build machine and leave no code behind. `--target` limits the
walk to one platform's dependencies (a Windows-only crate is not in the
Linux binary). Cargo resolves features once for all targets of the crate,
so a crate enabled only by a test dependency's feature may still be listed:
the list errs on the side of naming too much, never too little.

Licence texts are the LICENSE*, LICENCE*, COPYING*, NOTICE* and
UNLICENSE* files each crate ships in its published source (plus the file
its `license-file` names). Identical texts are printed once, with the crates
that use them, which keeps the file readable: most crates share the same
Apache-2.0 text.
"""

import argparse
import json
import os
import re
import subprocess
import sys
from collections import OrderedDict

LICENCE_PREFIXES = ("license", "licence", "copying", "notice", "unlicense")


def cargo_metadata(manifest_dir, target):
    command = ["cargo", "metadata", "--format-version", "1", "--locked"]
    if target:
        command += ["--filter-platform", target]
    result = subprocess.run(
        command, cwd=manifest_dir, check=True, stdout=subprocess.PIPE
    )
    return json.loads(result.stdout)


def linked_packages(metadata, root_name):
    """The packages whose code is linked into `root_name`'s binary."""
    packages = {package["id"]: package for package in metadata["packages"]}
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    root = next(
        package["id"]
        for package in metadata["packages"]
        if package["name"] == root_name and package["source"] is None
    )

    def is_proc_macro(package):
        return any("proc-macro" in target["kind"] for target in package["targets"])

    seen = {root}
    stack = [root]
    while stack:
        node = nodes[stack.pop()]
        for dep in node["deps"]:
            normal = any(kind["kind"] is None for kind in dep["dep_kinds"])
            if not normal or dep["pkg"] in seen:
                continue
            seen.add(dep["pkg"])
            if is_proc_macro(packages[dep["pkg"]]):
                continue
            stack.append(dep["pkg"])
    seen.discard(root)
    linked = [packages[id] for id in seen if not is_proc_macro(packages[id])]
    return sorted(linked, key=lambda package: (package["name"], version_key(package["version"])))


def version_key(version):
    """Orders 0.9.1 before 0.10.2."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"[.+-]", version)]


def licence_files(package):
    """(file name, text) for each licence file the crate publishes."""
    directory = os.path.dirname(package["manifest_path"])
    names = sorted(
        name
        for name in os.listdir(directory)
        if name.lower().startswith(LICENCE_PREFIXES)
        and os.path.isfile(os.path.join(directory, name))
    )
    declared = package.get("license_file")
    if declared:
        declared_path = os.path.normpath(os.path.join(directory, declared))
        relative = os.path.relpath(declared_path, directory)
        if os.path.isfile(declared_path) and relative not in names:
            names.append(relative)
    files = []
    for name in names:
        with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as handle:
            text = handle.read().replace("\r\n", "\n").strip("\n")
        if text.strip():
            files.append((name, text))
    return files


def normalised(text):
    """Texts that differ only in spacing are the same text."""
    return " ".join(text.split())


def render(root, packages):
    texts = OrderedDict()  # normalised text -> {"text", "names", "users"}
    rows = []
    for package in packages:
        label = f"{package['name']} {package['version']}"
        licence = package.get("license") or (
            f"see {package['license_file']}" if package.get("license_file") else "not declared"
        )
        refs = []
        for name, text in licence_files(package):
            entry = texts.setdefault(
                normalised(text), {"text": text, "names": set(), "users": []}
            )
            entry["names"].add(os.path.basename(name))
            entry["users"].append(label)
            refs.append(list(texts).index(normalised(text)) + 1)
        rows.append((label, licence, refs))

    out = []
    title = f"Third-party software in Cutout {root['version']}"
    out += [title, "=" * len(title), ""]
    out += [
        f"The {root['name']} program contains code from the {len(rows)} Rust crates listed",
        "below, each under its own licence. For each crate: its version, the licence",
        "it declares (an SPDX expression; \"A OR B\" means either may be chosen), and",
        "the numbers of the licence texts it publishes, which follow the list.",
        "Crates that publish no licence file are under the licence they declare.",
        "",
        "The ONNX Runtime library shipped with the program has its own licence",
        "and notices, in the files onnxruntime-LICENSE (.txt) and",
        "onnxruntime-ThirdPartyNotices.txt beside this one.",
        "",
        "Crates",
        "------",
        "",
    ]
    width = max(len(label) for label, _, _ in rows)
    for label, licence, refs in rows:
        texts_ref = ", ".join(f"[{n}]" for n in sorted(set(refs))) if refs else "no licence file"
        out.append(f"{label.ljust(width)}  {licence}  {texts_ref}")
    out += ["", "Licence texts", "-------------", ""]
    for number, entry in enumerate(texts.values(), start=1):
        names = ", ".join(sorted(entry["names"]))
        heading = f"[{number}] {names}"
        out += [heading, "=" * len(heading)]
        out += wrap_users(entry["users"])
        out += ["", entry["text"], "", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def wrap_users(users, width=78):
    lines = []
    line = "Used by:"
    for user in users:
        piece = f" {user},"
        if len(line) + len(piece) > width:
            lines.append(line)
            line = "   "
        line += piece
    lines.append(line.rstrip(","))
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", help="only dependencies for this target triple")
    parser.add_argument("--output", help="write here instead of standard output")
    parser.add_argument("--package", default="cutout", help="the crate whose binary is shipped")
    args = parser.parse_args()

    manifest_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    metadata = cargo_metadata(manifest_dir, args.target)
    root = next(
        package
        for package in metadata["packages"]
        if package["name"] == args.package and package["source"] is None
    )
    text = render(root, linked_packages(metadata, args.package))
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
