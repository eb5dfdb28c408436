"""Mutation testing of one package, and its markdown report (``make mutation PKG=...``).

mutmut reads its settings only from the pyproject.toml of the directory it runs
in, and one run has one test selection. The packages need different ones (the
PBFT rules are judged by the PBFT and property suites, the ledger by its own),
so each package has a profile under ``[tool.ledgersim.mutation.<name>]`` in
pyproject.toml, and this script runs mutmut in a scratch directory,
``build/mutation/<name>/``, whose pyproject.toml is the project's own plus a
``[tool.mutmut]`` table made from that profile; the sources are symlinks, so
the run sees the working tree as it is. The results then become
``docs/mutation/<name>.md``: the counts, every surviving mutant with its diff,
and the verdicts written by hand in ``docs/mutation/<name>-verdicts.toml``
(why a survivor is equivalent, or which test now kills it).

Profile keys (all lists of strings unless said):

* ``mutate``: files to mutate (globs relative to the repository root);
* ``targets``: mutant-name globs to run (e.g. ``pbft.rules.*``); empty runs all;
* ``tests``: pytest arguments choosing the tests (files, ``-k`` expressions);
* ``description``: one line for the report's title (a string).

Usage::

    python scripts/mutation.py run PKG [--only GLOB ...]   # run, then write the report
    python scripts/mutation.py report PKG                  # rewrite the report only
    python scripts/mutation.py list                        # the profiles
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "build" / "mutation"
REPORTS = ROOT / "docs" / "mutation"
SOURCES = ("msp", "pbft", "ledger", "chaincode", "sim")
"""Packages copied into mutmut's sandbox (only a profile's ``mutate`` files get mutants)."""

LINKED = ("tests", "scenarios", "docs", "README.md", "BENCHMARKS.md", *SOURCES)
"""What the scratch directory links to, so tests that read files next to them still work."""

EQUIVALENT = "equivalent"
KILLED_BY = "killed-by"


class UsageError(Exception):
    """Bad input from the command line or the profile: printed on one line, exit 2."""


@dataclass
class Profile:
    name: str
    description: str
    mutate: list[str]
    targets: list[str]
    tests: list[str]


@dataclass
class Outcome:
    """One mutant's result, as ``mutmut results --all true`` prints it."""

    name: str
    status: str
    diff: str = ""


@dataclass
class Verdict:
    """A survivor's hand-written verdict: equivalent (with why) or killed (by which test)."""

    kind: str
    reason: str


@dataclass
class Report:
    profile: Profile
    command: str
    outcomes: list[Outcome]
    verdicts: dict[str, Verdict] = field(default_factory=dict)


def load_profiles() -> dict[str, Profile]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    table = data.get("tool", {}).get("ledgersim", {}).get("mutation", {})
    profiles = {}
    for name, raw in table.items():
        profiles[name] = Profile(
            name=name,
            description=str(raw.get("description", name)),
            mutate=list(raw.get("mutate", [])),
            targets=list(raw.get("targets", [])),
            tests=list(raw.get("tests", [])),
        )
    return profiles


def profile_named(name: str) -> Profile:
    profiles = load_profiles()
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise UsageError(f"no mutation profile {name!r} in pyproject.toml (known: {known})")
    profile = profiles[name]
    if not profile.mutate or not profile.tests:
        raise UsageError(f"mutation profile {name!r} needs both 'mutate' and 'tests'")
    return profile


def mutmut_table(profile: Profile) -> str:
    """The ``[tool.mutmut]`` table for this profile (TOML arrays of strings are JSON arrays)."""
    settings = {
        "source_paths": list(SOURCES),
        "only_mutate": profile.mutate,
        "pytest_add_cli_args_test_selection": profile.tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q"],
        "also_copy": [p for p in LINKED if p not in SOURCES],
    }
    lines = ["", "[tool.mutmut]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def prepare_scratch(profile: Profile, fresh: bool) -> Path:
    """A directory where mutmut sees this profile's settings and the working tree's sources."""
    where = SCRATCH / profile.name
    if fresh and where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True, exist_ok=True)
    for entry in LINKED:
        link = where / entry
        if not link.is_symlink() and (ROOT / entry).exists():
            link.symlink_to(ROOT / entry)
    project = (ROOT / "pyproject.toml").read_text()
    (where / "pyproject.toml").write_text(project + mutmut_table(profile))
    return where


def mutmut(where: Path, *args: str, check: bool = True) -> str:
    exe = Path(sys.executable).parent / "mutmut"
    if not exe.exists():
        raise UsageError("mutmut is not installed: pip install -e '.[mutation]'")
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(
        [str(exe), *args], cwd=where, env=env, text=True, capture_output=not check
    )
    if check and done.returncode != 0:
        raise SystemExit(f"mutmut {args[0]} failed with exit code {done.returncode}")
    return done.stdout or ""


def selected(name: str, globs: list[str]) -> bool:
    return not globs or any(fnmatch(name, g) for g in globs)


def collect(profile: Profile, where: Path, globs: list[str]) -> list[Outcome]:
    listing = mutmut(where, "results", "--all", "true", check=False)
    outcomes = []
    for line in listing.splitlines():
        match = re.fullmatch(r"\s*(\S+): (.+)", line)
        if match and selected(match.group(1), globs):
            outcomes.append(Outcome(match.group(1), match.group(2).strip()))
    for outcome in outcomes:
        if outcome.status != "killed":
            shown = mutmut(where, "show", outcome.name, check=False)
            outcome.diff = "\n".join(shown.splitlines()[1:]).strip()
    return sorted(outcomes, key=lambda o: natural_key(o.name))


def natural_key(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("__mutmut_")
    return (stem, int(number)) if number.isdigit() else (name, 0)


def load_verdicts(profile: Profile) -> dict[str, Verdict]:
    path = REPORTS / f"{profile.name}-verdicts.toml"
    if not path.exists():
        return {}
    verdicts = {}
    for name, raw in tomllib.loads(path.read_text()).items():
        if EQUIVALENT in raw:
            verdicts[name] = Verdict(EQUIVALENT, str(raw[EQUIVALENT]))
        elif KILLED_BY in raw:
            verdicts[name] = Verdict(KILLED_BY, str(raw[KILLED_BY]))
        else:
            raise UsageError(f"{path.name}: {name!r} needs '{EQUIVALENT}' or '{KILLED_BY}'")
    return verdicts


MUTANT_NAME = re.compile(r"(?P<module>.+?)\.x(?:ǁ(?P<cls>[^ǁ]+)ǁ|_)(?P<fn>.+)__mutmut_\d+")
"""mutmut's names: ``<module>.x_<function>__mutmut_<n>`` or ``<module>.xǁ<Class>ǁ<method>__...``."""


def function_of(name: str) -> str:
    """The mutated function as ``module:Class.method`` (or ``module:function``)."""
    match = MUTANT_NAME.fullmatch(name)
    if match is None:
        return name
    owner = f"{match['cls']}." if match["cls"] else ""
    return f"{match['module']}:{owner}{match['fn']}"


def render(report: Report) -> str:
    profile, outcomes = report.profile, report.outcomes
    counts = Counter(o.status for o in outcomes)
    survivors = [o for o in outcomes if o.status != "killed"]
    status = {o.name: o.status for o in outcomes}
    explained = {n for n, v in report.verdicts.items() if v.kind == EQUIVALENT}
    unexplained = [o for o in survivors if o.name not in explained]
    out = [
        f"# Mutation testing: {profile.description}",
        "",
        "Written by `scripts/mutation.py` from the results of mutmut; do not edit by hand",
        f"(verdicts on survivors live in `docs/mutation/{profile.name}-verdicts.toml`).",
        "",
        f"Command: `{report.command}`",
        "",
        "Files mutated: " + ", ".join(f"`{p}`" for p in profile.mutate),
        "",
        "Mutants run: " + (", ".join(f"`{g}`" for g in profile.targets) or "all of them"),
        "",
        "Tests run against each mutant (those of this selection that cover its function): "
        + " ".join(f"`{t}`" for t in profile.tests),
        "",
        "| outcome | mutants |",
        "|---|---|",
    ]
    out += [f"| {status} | {count} |" for status, count in sorted(counts.items())]
    out += [f"| **total** | {len(outcomes)} |", ""]
    out += [
        f"Survivors: {len(survivors)}, of which unexplained: **{len(unexplained)}**.",
        "",
    ]
    if survivors:
        out += ["## Survivors", "", "| mutant | function | verdict |", "|---|---|---|"]
        for o in survivors:
            v = report.verdicts.get(o.name)
            if v is None:
                text = "**unexplained**"
            elif v.kind == KILLED_BY:
                text = f"**unexplained** (said killed by {v.reason}, yet it survived)"
            else:
                text = f"equivalent: {v.reason}"
            number = o.name.rpartition("__mutmut_")[2]
            out.append(f"| {number} | `{function_of(o.name)}` | {text} |")
        out += ["", "### Diffs", ""]
        for o in survivors:
            out += [f"#### `{o.name}` ({o.status})", "", "```diff", o.diff, "```", ""]
    now_killed = (n for n, v in report.verdicts.items() if v.kind == KILLED_BY)
    killed = sorted((n for n in now_killed if status.get(n) == "killed"), key=natural_key)
    if killed:
        out += ["## Survivors of earlier runs, killed by tests added for them", ""]
        out += ["| mutant | killed by |", "|---|---|"]
        out += [f"| `{n}` | {report.verdicts[n].reason} |" for n in killed]
        out.append("")
    stale = sorted(n for n in report.verdicts if n not in status)
    if stale:
        out += ["## Verdicts on mutants this run did not produce (stale: renumber them)", ""]
        out += [f"- `{n}`" for n in stale]
        out.append("")
    return "\n".join(out)


def write_report(profile: Profile, where: Path, globs: list[str], command: str) -> Path:
    outcomes = collect(profile, where, globs)
    if not outcomes:
        raise UsageError(f"no mutmut results in {where}: run `make mutation PKG={profile.name}`")
    report = Report(profile, command, outcomes, load_verdicts(profile))
    REPORTS.mkdir(parents=True, exist_ok=True)
    path = REPORTS / f"{profile.name}.md"
    path.write_text(render(report))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run mutmut over a profile, then write its report")
    run.add_argument("package")
    run.add_argument("--only", nargs="*", default=[], help="mutant-name globs (overrides targets)")
    run.add_argument("--keep", action="store_true", help="reuse the last run's cached results")
    report = sub.add_parser("report", help="rewrite the report from the last run")
    report.add_argument("package")
    report.add_argument("--only", nargs="*", default=[])
    sub.add_parser("list", help="the profiles in pyproject.toml")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for p in load_profiles().values():
                print(f"{p.name}: {p.description}")
            return 0
        profile = profile_named(args.package)
        globs = args.only or profile.targets
        command = f"make mutation PKG={profile.name}" + (
            f" MUTATE='{' '.join(args.only)}'" if args.only else ""
        )
        if args.command == "run":
            where = prepare_scratch(profile, fresh=not args.keep)
            mutmut(where, "run", *globs)
        else:
            where = SCRATCH / profile.name
        print(f"wrote {write_report(profile, where, globs, command).relative_to(ROOT)}")
    except UsageError as exc:
        print(f"mutation: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
