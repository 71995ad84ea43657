"""Datasets: registry (names, URLs, sha256), resolution order, readers."""

from embedlab.datasets.kg import KgDataset, load_kg
from embedlab.datasets.registry import REGISTRY, DatasetSpec, RemoteFile
from embedlab.datasets.resolve import resolve_dataset_dir

__all__ = ["REGISTRY", "DatasetSpec", "KgDataset", "RemoteFile", "load_kg", "resolve_dataset_dir"]
