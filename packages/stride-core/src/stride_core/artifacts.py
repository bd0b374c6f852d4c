"""Write and read STRIDE artifacts (Zarr, Parquet, manifest folders), validating their contract both ways."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr
import zarr
from pydantic import BaseModel, ValidationError

from stride_contracts import ArtifactHeader
from stride_core.atomic import atomic_output, write_text_atomic
from stride_core.errors import ArtifactError

ManifestT = TypeVar("ManifestT", bound=ArtifactHeader)

MANIFEST_KEY = "stride"
MANIFEST_FILE = "manifest.json"

PRODUCERS = {
    "stride.dataset": "stride-data build",
    "stride.stats": "stride-stats",
    "stride.checkpoint": "stride-train",
    "stride.samples": "stride-generate",
    "stride.metrics": "stride-eval",
}


def _contract_of(model: type[ArtifactHeader]) -> tuple[str, int]:
    return model.model_fields["contract"].default, model.model_fields["version"].default


def validate_manifest(raw: Any, path: Path, model: type[ManifestT]) -> ManifestT:
    """Check contract name, then version, then every field; errors name the file, field and fix."""
    contract, version = _contract_of(model)
    producer = PRODUCERS.get(contract, "the STRIDE tool that makes it")
    if not isinstance(raw, dict) or "contract" not in raw:
        raise ArtifactError(
            f"{path}: no STRIDE manifest found (key '{MANIFEST_KEY}'); expected a {contract} artifact "
            f"written by {producer}"
        )
    if raw["contract"] != contract:
        raise ArtifactError(
            f"{path}: is a '{raw['contract']}' artifact, expected '{contract}'; pass the output of {producer}"
        )
    if raw.get("version") != version:
        raise ArtifactError(
            f"{path}: {contract} contract version {raw.get('version')!r} is not supported (this STRIDE reads "
            f"version {version}); re-create it with this version of {producer}"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise ArtifactError(
            f"{path}: manifest field '{field}': {error['msg']} ({contract} v{version}); "
            f"re-create it with {producer}"
        ) from None


def _manifest_json(manifest: BaseModel) -> dict[str, Any]:
    # Round-trip through JSON text so Infinity and dates are encoded exactly as readers will see them.
    result: dict[str, Any] = json.loads(manifest.model_dump_json())
    return result


def _require_exists(path: Path, model: type[ArtifactHeader]) -> None:
    if not path.exists():
        contract, _ = _contract_of(model)
        raise ArtifactError(
            f"{path}: not found; expected a {contract} artifact written by {PRODUCERS[contract]}"
        )


# --- Zarr -------------------------------------------------------------------------------------------


def write_zarr_artifact(dataset: xr.Dataset, manifest: ArtifactHeader, path: Path) -> None:
    """Write `dataset` to a Zarr store with the manifest as root attribute, atomically."""
    validate_manifest(_manifest_json(manifest), path, type(manifest))
    with atomic_output(path) as staging:
        dataset.to_zarr(staging, mode="w", consolidated=False, zarr_format=3)
        seal_zarr_store(staging, manifest)


def seal_zarr_store(store: Path, manifest: ArtifactHeader) -> None:
    """Attach the validated manifest to a fully written (still unpublished) store and consolidate it."""
    validate_manifest(_manifest_json(manifest), store, type(manifest))
    group = zarr.open_group(store, mode="r+")
    group.attrs[MANIFEST_KEY] = _manifest_json(manifest)
    # Consolidated metadata is a zarr-python extension to v3 (other readers ignore it); it lets a plain
    # xr.open_zarr(path) open the store in one read and without warnings.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        zarr.consolidate_metadata(store)


def read_zarr_manifest(
    path: Path, model: type[ManifestT], required_arrays: tuple[str, ...] = ()
) -> ManifestT:
    """Validate a store's manifest and the presence of its arrays, without loading data."""
    path = Path(path)
    _require_exists(path, model)
    contract, version = _contract_of(model)
    try:
        group = zarr.open_group(path, mode="r")
        raw = group.attrs.asdict().get(MANIFEST_KEY)
        # The arrays really in the store, not those its consolidated metadata lists: a deleted array
        # stays listed there and would only fail later, deep inside a read.
        present = set(zarr.open_group(path, mode="r", use_consolidated=False).array_keys())
    except Exception as exc:  # zarr raises many types for corrupt stores
        raise ArtifactError(
            f"{path}: not a readable Zarr store ({type(exc).__name__}: {exc}); re-create it with "
            f"{PRODUCERS[contract]}"
        ) from None
    manifest = validate_manifest(raw, path, model)
    for name in required_arrays:
        if name not in present:
            raise ArtifactError(
                f"{path}: missing array '{name}' (required by {contract} contract v{version}); "
                f"re-create it with {PRODUCERS[contract]}"
            )
    return manifest


def open_zarr_artifact(
    path: Path, model: type[ManifestT], required_arrays: tuple[str, ...] = ()
) -> tuple[xr.Dataset, ManifestT]:
    """Open a validated store lazily; data errors surface later through `load_variable`."""
    manifest = read_zarr_manifest(path, model, required_arrays)
    try:
        dataset = xr.open_zarr(path, consolidated=False)
    except Exception as exc:
        raise ArtifactError(f"{path}: cannot be opened as a dataset ({type(exc).__name__}: {exc})") from None
    return dataset, manifest


def load_variable(dataset: xr.Dataset, name: str, path: Path) -> xr.DataArray:
    """Load one array into memory, turning a corrupt or truncated chunk into an ArtifactError."""
    try:
        return dataset[name].load()
    except Exception as exc:
        raise ArtifactError(
            f"{path}: array '{name}' could not be read ({type(exc).__name__}: {exc}); the store is corrupt "
            f"or incomplete, re-create it"
        ) from None


# --- Parquet ----------------------------------------------------------------------------------------


def write_parquet_artifact(
    table: pd.DataFrame, manifest: ArtifactHeader, path: Path, row_model: type[BaseModel]
) -> None:
    """Validate every row, then write the table with the manifest in the Parquet schema metadata."""
    _validate_rows(table, path, row_model)
    validate_manifest(_manifest_json(manifest), path, type(manifest))
    arrow = pa.Table.from_pandas(table[list(row_model.model_fields)], preserve_index=False)
    metadata = dict(arrow.schema.metadata or {})
    metadata[MANIFEST_KEY.encode()] = json.dumps(_manifest_json(manifest)).encode()
    with atomic_output(path) as staging:
        pq.write_table(arrow.replace_schema_metadata(metadata), staging)


def read_parquet_artifact(
    path: Path, model: type[ManifestT], row_model: type[BaseModel]
) -> tuple[pd.DataFrame, ManifestT]:
    """Read a Parquet artifact, validating its manifest and every row."""
    path = Path(path)
    _require_exists(path, model)
    contract, _ = _contract_of(model)
    try:
        arrow = pq.read_table(path)
    except Exception as exc:
        raise ArtifactError(
            f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc}); re-create it with "
            f"{PRODUCERS[contract]}"
        ) from None
    raw_bytes = (arrow.schema.metadata or {}).get(MANIFEST_KEY.encode())
    raw = json.loads(raw_bytes) if raw_bytes else None
    manifest = validate_manifest(raw, path, model)
    table = arrow.to_pandas()
    _validate_rows(table, path, row_model)
    return table, manifest


def table_records(table: pd.DataFrame, row_model: type[BaseModel]) -> list[dict[str, Any]]:
    """The rows of a contract table as dicts of the row model's fields (Parquet's NaN for a missing value
    becomes None)."""
    columns = list(row_model.model_fields)
    return [
        {str(k): v for k, v in record.items()}
        for record in table[columns].astype(object).where(table[columns].notna(), None).to_dict("records")
    ]


RowT = TypeVar("RowT", bound=BaseModel)


def contract_rows(table: pd.DataFrame, row_model: type[RowT]) -> list[RowT]:
    """The rows of a contract table (already validated when read) as row models."""
    return [row_model.model_validate(record) for record in table_records(table, row_model)]


def _validate_rows(table: pd.DataFrame, path: Path, row_model: type[BaseModel]) -> None:
    missing = [column for column in row_model.model_fields if column not in table.columns]
    if missing:
        raise ArtifactError(f"{path}: missing column(s) {missing} required by {row_model.__name__}")
    records = table_records(table, row_model)
    for index, record in enumerate(records):
        try:
            row_model.model_validate(record)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"])
            raise ArtifactError(
                f"{path}: row {index} field '{field}': {error['msg']} (got {record!r})"
            ) from None


# --- Manifest folders (checkpoints) ---------------------------------------------------------------


def write_manifest_file(folder: Path, manifest: ArtifactHeader) -> None:
    """Write `manifest.json` into a folder being built (the caller publishes the folder atomically)."""
    validate_manifest(_manifest_json(manifest), folder, type(manifest))
    write_text_atomic(folder / MANIFEST_FILE, json.dumps(_manifest_json(manifest), indent=2) + "\n")


def read_manifest_folder(folder: Path, model: type[ManifestT]) -> ManifestT:
    """Read and validate `folder/manifest.json`."""
    folder = Path(folder)
    _require_exists(folder, model)
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        contract, _ = _contract_of(model)
        raise ArtifactError(
            f"{folder}: no {MANIFEST_FILE}; expected a {contract} folder written by {PRODUCERS[contract]}"
        )
    try:
        raw = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{manifest_path}: not valid JSON ({exc}); the checkpoint is corrupt") from None
    return validate_manifest(raw, manifest_path, model)
