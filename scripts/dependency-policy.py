#!/usr/bin/env python3
"""Checks a Cargo workspace's dependency graph against deny.toml's policy.

Usage: dependency-policy.py DENY_TOML [cargo metadata args...]

For each target in [graph].targets it asks `cargo metadata --filter-platform` for
the resolved graph (normal, build and dev dependencies, default features) and
walks it from the workspace members. It fails, naming the crate and who pulls it
in, when a crate of [bans].deny is reachable, when a crate comes from a git
repository or from more than one registry ([sources]), when a registry crate
asks for a wildcard version ([bans].wildcards) or when a crate's licence
expression cannot be satisfied by [licenses].allow.

It reads the same deny.toml cargo-deny reads, with only the Python standard
library, so CI needs no extra tool built from source.
"""

import json
import re
import subprocess
import sys
import tomllib


def licence_ok(expression, allowed):
    """Whether an SPDX expression (AND, OR, WITH, parentheses; the legacy `/` is OR) is satisfiable."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expression.replace("/", " OR "))
    position = 0

    def peek():
        return tokens[position] if position < len(tokens) else None

    def take():
        nonlocal position
        position += 1
        return tokens[position - 1]

    def term():
        if peek() == "(":
            take()
            value = either()
            if take() != ")":
                raise ValueError(f"unbalanced parentheses in {expression!r}")
            return value
        licence = take()
        if peek() == "WITH":
            take()
            licence = f"{licence} WITH {take()}"
        return licence in allowed

    def both():
        value = term()
        while peek() == "AND":
            take()
            value = term() and value
        return value

    def either():
        value = both()
        while peek() == "OR":
            take()
            value = both() or value
        return value

    value = either()
    if position != len(tokens):
        raise ValueError(f"cannot read the licence expression {expression!r}")
    return value


def problems(policy, metadata):
    """Every violation of the policy in one target's resolved graph."""
    packages = {package["id"]: package for package in metadata["packages"]}
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    banned = {entry["crate"]: entry.get("reason", "banned") for entry in policy["bans"].get("deny", [])}
    allowed = set(policy["licenses"]["allow"])
    wildcards_denied = policy["bans"].get("wildcards") == "deny"

    parent = {member: None for member in metadata["workspace_members"]}
    queue = list(parent)
    while queue:
        current = queue.pop()
        for dependency in nodes[current]["deps"]:
            if dependency["pkg"] not in parent:
                parent[dependency["pkg"]] = current
                queue.append(dependency["pkg"])

    def chain(package_id):
        names = []
        while package_id is not None:
            names.append(packages[package_id]["name"])
            package_id = parent[package_id]
        return " <- ".join(names)

    found = []
    registries = set()
    for package_id in parent:
        package = packages[package_id]
        source = package["source"]
        if package["name"] in banned:
            found.append(f"banned crate {chain(package_id)}: {banned[package['name']]}")
        if source is None:
            continue
        if source.startswith(("registry+", "sparse+")):
            registries.add(source)
        else:
            found.append(f"{chain(package_id)} comes from {source}, not the crate registry")
        expression = package.get("license")
        if not expression:
            found.append(f"{chain(package_id)} declares no licence")
        elif not licence_ok(expression, allowed):
            found.append(f"{chain(package_id)} is under {expression!r}, which deny.toml does not allow")
        if wildcards_denied:
            for dependency in package["dependencies"]:
                if dependency["req"] == "*" and dependency.get("source"):
                    found.append(f"{chain(package_id)} asks for any version of {dependency['name']}")
    if len(registries) > 1:
        found.append(f"crates come from more than one registry: {sorted(registries)}")
    return found


def main():
    deny_toml, *cargo_args = sys.argv[1:]
    with open(deny_toml, "rb") as file:
        policy = tomllib.load(file)
    found = []
    for target in policy["graph"]["targets"]:
        output = subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--filter-platform", target, *cargo_args],
            check=True,
            stdout=subprocess.PIPE,
        ).stdout
        found += [f"{target}: {problem}" for problem in problems(policy, json.loads(output))]
    for problem in dict.fromkeys(found):
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
