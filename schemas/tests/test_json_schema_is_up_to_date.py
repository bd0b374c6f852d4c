"""The committed JSON Schemas must equal what the pydantic models export."""

from pathlib import Path

from stride_contracts.export import DEFAULT_DIR, render_schemas


def test_json_schema_is_up_to_date() -> None:
    expected = render_schemas()
    committed = {path.name: path.read_text() for path in Path(DEFAULT_DIR).glob("*.schema.json")}
    assert set(committed) == set(expected), "run `stride-contracts-export` to refresh schemas/json/"
    for name, text in expected.items():
        assert committed[name] == text, f"{name} is stale: run `stride-contracts-export`"
