from pathlib import Path

import pytest

from stride_core.atomic import atomic_output, write_text_atomic


def test_output_appears_only_when_complete(tmp_path: Path) -> None:
    final = tmp_path / "artifact"
    with atomic_output(final) as staging:
        staging.mkdir()
        (staging / "part").write_text("x")
        assert not final.exists()
        assert staging.name.startswith(".artifact.partial-")
    assert (final / "part").read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]


def test_failure_leaves_old_artifact_and_no_staging(tmp_path: Path) -> None:
    final = tmp_path / "artifact.txt"
    write_text_atomic(final, "old")
    with pytest.raises(RuntimeError), atomic_output(final) as staging:
        staging.write_text("half")
        raise RuntimeError("killed")
    assert final.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["artifact.txt"]


def test_replacing_an_existing_folder(tmp_path: Path) -> None:
    final = tmp_path / "out"
    for content in ("first", "second"):
        with atomic_output(final) as staging:
            staging.mkdir()
            (staging / "f").write_text(content)
    assert (final / "f").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
