#!/usr/bin/env python3
"""Check the artifacts of a chain run by slurm/ (on SLURM, or its scripts run inside the images).

    python ci/check_chain.py OUT --steps 40 --members 3 --shard val=4 --shard test=6

Every manifest is validated against its committed JSON Schema, the checkpoint holds the asked-for steps,
each shard's samples have the expected dates and members, its metrics table is not empty and its plots
exist. Exits 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import jsonschema
import pandas as pd
import pyarrow.parquet as pq
import zarr

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "json"


def check_schema(manifest: dict[str, object]) -> None:
    schema = json.loads((SCHEMAS / f"{manifest['contract']}.v{manifest['version']}.schema.json").read_text())
    jsonschema.validate(manifest, schema)


def _parquet_manifest(path: Path) -> dict[str, object]:
    metadata = pq.read_schema(path).metadata or {}
    return dict(json.loads(metadata[b"stride"]))


def check_chain(out: Path, steps: int, members: int, shards: dict[str, int]) -> list[str]:
    """Problems with the chain folder `out` (empty: all good)."""
    problems: list[str] = []

    def check(what: str, test: object) -> None:
        try:
            result = test() if callable(test) else test
            if result is False:
                problems.append(f"{out}: {what}")
        except Exception as exc:  # a missing file or a schema violation: report it, keep checking
            problems.append(f"{out}: {what}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")

    check(
        "dataset.zarr manifest",
        lambda: check_schema(zarr.open_group(out / "dataset.zarr", mode="r").attrs["stride"]),
    )
    check("stats.parquet manifest", lambda: check_schema(_parquet_manifest(out / "stats.parquet")))
    manifest_file = out / "checkpoint" / "manifest.json"
    check("checkpoint manifest", lambda: check_schema(json.loads(manifest_file.read_text())))
    check(f"checkpoint at step {steps}", lambda: json.loads(manifest_file.read_text())["step"] == steps)
    for shard, n_dates in shards.items():
        samples = out / f"samples_{shard}.zarr"
        check(
            f"{samples.name} manifest",
            lambda s=samples: check_schema(zarr.open_group(s, mode="r").attrs["stride"]),
        )
        check(
            f"{samples.name} holds {n_dates} dates x {members} members",
            lambda s=samples, n=n_dates: zarr.open_group(s, mode="r")["members"].shape[:2] == (n, members),
        )
        metrics = out / f"metrics_{shard}.parquet"
        check(f"{metrics.name} manifest", lambda m=metrics: check_schema(_parquet_manifest(m)))
        check(f"{metrics.name} has rows", lambda m=metrics: len(pd.read_parquet(m)) > 0)
        plots = out / f"plots_{shard}"
        check(f"{plots.name} has figures", lambda p=plots: len(list(p.glob("*.png"))) >= 2)
    return problems


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--members", type=int, required=True)
    parser.add_argument("--shard", action="append", default=[], metavar="NAME=DATES", required=True)
    args = parser.parse_args(list(argv) if argv is not None else None)
    shards = {name: int(n) for name, n in (item.split("=", 1) for item in args.shard)}
    problems = check_chain(args.out, args.steps, args.members, shards)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{args.out}: every artifact present and valid ({', '.join(shards)})")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
