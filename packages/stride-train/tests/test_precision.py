from pathlib import Path

import torch

from stride_train.precision import cpu_flags, native_bf16


def test_native_bf16_reads_the_cpu_flags(tmp_path: Path) -> None:
    zen3 = tmp_path / "zen3"
    zen3.write_text(
        "processor\t: 0\nflags\t\t: fpu sse avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu sse avx2 fma\n"
    )
    sapphire = tmp_path / "sapphire"
    sapphire.write_text("processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert cpu_flags(zen3) == {"fpu", "sse", "avx2", "fma"}
    assert not native_bf16(torch.device("cpu"), zen3)
    assert native_bf16(torch.device("cpu"), sapphire)
    assert cpu_flags(tmp_path / "absent") == set()
    assert not native_bf16(torch.device("cpu"), tmp_path / "absent")
