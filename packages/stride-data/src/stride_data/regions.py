"""Regions now live in stride_core.regions (stride-generate selects them too); re-exported for stride-data."""

from stride_core.regions import IndexBox, LatLonBox, LatLonGrid, RegionConfig, named_regions, region_slices

__all__ = ["IndexBox", "LatLonBox", "LatLonGrid", "RegionConfig", "named_regions", "region_slices"]
