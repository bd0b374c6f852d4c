"""Export every contract's JSON Schema into `schemas/json/` (the committed copies)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stride_contracts import CONTRACTS

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "json"


def render_schemas() -> dict[str, str]:
    """File name -> JSON text for every contract, deterministic so drift is a plain diff."""
    return {
        f"{name}.v{model.model_fields['version'].default}.schema.json": json.dumps(
            model.model_json_schema(), indent=2, sort_keys=True
        )
        + "\n"
        for name, model in sorted(CONTRACTS.items())
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_DIR, help="folder to write (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in render_schemas().items():
        (args.out / name).write_text(text)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
