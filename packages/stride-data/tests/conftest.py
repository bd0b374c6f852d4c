"""Run `stride-data build` from a config template filled with a source path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stride_data.cli import main

Build = Callable[..., int]


@pytest.fixture
def build_from(tmp_path: Path) -> Callable[[str], Build]:
    """`build_from(template)(source, *options)` writes the config and builds tmp_path/dataset.zarr."""

    def with_template(template: str) -> Build:
        def build(source: Path | list[Path], *extra: str) -> int:
            config = tmp_path / "data.yaml"
            paths = f"[{', '.join(map(str, source))}]" if isinstance(source, list) else str(source)
            config.write_text(template.format(path=paths))
            return main(["build", "--config", str(config), "--out", str(tmp_path / "dataset.zarr"), *extra])

        return build

    return with_template
