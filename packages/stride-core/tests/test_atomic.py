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


def test_stale_partials_of_a_killed_run_are_removed_on_success(tmp_path: Path) -> None:
    final = tmp_path / "dataset.zarr"
    (tmp_path / ".dataset.zarr.partial-deadbeef").mkdir()  # what kill -9 during a build leaves
    (tmp_path / ".dataset.zarr.partial-deadbeef" / "chunk").write_text("half")
    (tmp_path / ".other.zarr.partial-cafe0000").mkdir()  # another output's: not ours to delete
    with atomic_output(final) as staging:
        staging.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.zarr.partial-cafe0000", "dataset.zarr"]


def test_disk_full_names_the_output_and_leaves_nothing(tmp_path: Path) -> None:
    import subprocess

    from stride_core.errors import StrideError

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=False).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        final = disk / "big.bin"
        expected = r"big\.bin: the disk ran out of space after .* MiB were written"
        with pytest.raises(StrideError, match=expected) as info, atomic_output(final) as staging:
            staging.write_bytes(b"\0" * (4 * 2**20))
        assert "nothing was published" in str(info.value) and "\n" not in str(info.value)
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)
