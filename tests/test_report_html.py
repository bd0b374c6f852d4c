"""report.html of the demo chain, opened in a real headless Chromium: every figure renders, nothing is broken."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import Chain
from matplotlib.image import imread
from mlflow import MlflowClient

pytestmark = pytest.mark.e2e

# Appended to a copy of the page: after every image has loaded (or failed), write what the browser decoded
# into the DOM, which --dump-dom then prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images).map((img) => ({
    alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(images);
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    """The Chromium binary, installed with apt-get when missing; skips only when that installation fails."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    install = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium"
    done = subprocess.run(["sh", "-c", install], capture_output=True, text=True, timeout=1200, check=False)
    found = shutil.which("chromium")
    if done.returncode != 0 or found is None:
        pytest.skip(f"chromium is not installed and `{install}` failed (no network?): {done.stderr[-300:]}")
    return found


def browser(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--headless", "--disable-gpu", "--no-sandbox", "--virtual-time-budget=10000", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def png_size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk right after the signature
    return width, height


@pytest.fixture(scope="module")
def report(chain: Chain) -> Path:
    path = chain.path("plots/report.html")
    assert path.is_file(), "stride-plot wrote no report.html"
    return path


def test_every_figure_renders_in_chromium(report: Path, chain: Chain, tmp_path: Path) -> None:
    html = report.read_text(encoding="utf-8")
    embedded = [bytes_of(match) for match in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]
    pngs = sorted(chain.path("plots").glob("*.png"))
    eval_figures = sorted(chain.path("metrics_figures").glob("*.png"))
    assert len(embedded) == len(pngs) + len(eval_figures) >= 3
    assert 'src="http' not in html and "<link" not in html, "the page must be self-contained"

    probe_page = tmp_path / "report_probe.html"
    probe_page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dumped = browser(chromium(), "--dump-dom", probe_page.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', dumped.stdout, re.S)
    assert found, f"the probe did not run; Chromium printed: {dumped.stdout[:500]} {dumped.stderr[-500:]}"
    images = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert len(images) == len(embedded)
    for image, data in zip(images, embedded, strict=True):
        assert image["complete"], image["alt"]
        # A broken image has naturalWidth 0; a decoded one has the PNG's own size.
        assert (image["width"], image["height"]) == png_size(data), image["alt"]


def test_screenshot_shows_the_page(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = browser(chromium(), f"--screenshot={shot}", "--window-size=1400,2400", report.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = imread(shot)
    assert pixels.shape[:2] == (2400, 1400)
    # Not a blank page: a fair part of it is drawn (text, tables, maps) rather than white background.
    drawn = (pixels[..., :3] < 0.9).any(axis=-1).mean()
    assert drawn > 0.05, drawn


def test_report_holds_the_headline_table_and_the_lineage(report: Path, chain: Chain) -> None:
    html = report.read_text(encoding="utf-8")
    table = html[html.index('id="headline-metrics"') : html.index('id="quicklooks"')]
    for metric in ("crps", "rmse_mean", "spread_skill", "spectrum_error"):
        assert f"<td>{metric}</td>" in table, metric
    for model in ("stride", "bicubic", "bilinear"):
        assert f"<th>{model}</th>" in table, model
    assert not re.search(r"<td>(brier|fss|quantile_error)[^<]*</td>", table), "qualified rows in the headline"
    lineage = html[html.index('id="lineage"') :]
    for text in (
        chain.path("samples.zarr").resolve().as_uri(),
        chain.path("dataset.zarr").resolve().as_uri(),
        chain.path("checkpoint").resolve().as_uri(),
        chain.path("metrics.parquet").resolve().as_uri(),
        "<th>solver</th><td>heun</td>",
        "<th>steps</th><td>6</td>",
        "<th>members</th><td>3</td>",
    ):
        assert text in lineage, text


def test_report_is_an_mlflow_artifact_of_the_plot_run(chain: Chain) -> None:
    client = MlflowClient(f"sqlite:///{chain.path('mlflow.db')}")
    experiment = client.get_experiment_by_name("stride")
    (run,) = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags["stride.tool"] == "stride-plot"
    ]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/report.html", "plots/metrics_summary.png"} <= artifacts


def test_south_up_copy_of_the_real_samples_draws_the_same_quicklook(chain: Chain, tmp_path: Path) -> None:
    """The chain's samples, stored south-up (rows and lat reversed, lat_descending false), look the same."""
    import xarray as xr

    from stride_contracts import SamplesManifest
    from stride_core.artifacts import open_zarr_artifact
    from stride_core.variables import VariableRegistry
    from stride_plot.quicklook import draw_quicklooks

    samples, manifest = open_zarr_artifact(chain.path("samples.zarr"), SamplesManifest)
    samples = samples.isel(time=[0]).load()
    assert manifest.grid.lat_descending
    flipped = samples.isel(y=slice(None, None, -1), y_lr=slice(None, None, -1))
    flipped_manifest = manifest.model_copy(
        update={"grid": manifest.grid.model_copy(update={"lat_descending": False})}
    )
    registry = VariableRegistry.load()
    (north_up,) = draw_quicklooks(samples, manifest, [0], registry, tmp_path / "north")
    (south_up,) = draw_quicklooks(flipped, flipped_manifest, [0], registry, tmp_path / "south")
    np.testing.assert_array_equal(imread(south_up), imread(north_up))
    assert isinstance(flipped, xr.Dataset) and float(flipped["lat"][0]) < float(flipped["lat"][-1])


def bytes_of(encoded: str) -> bytes:
    import base64

    return base64.b64decode(encoded)
