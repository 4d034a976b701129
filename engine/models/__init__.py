"""Model management: the catalog, where files are, and getting them (download or assembly)."""

from .catalog import (
    ModelEntry,
    ModelStatus,
    catalog_path,
    default_model,
    find,
    load_catalog,
    local_path,
    model_status,
    models_dir,
    package_path,
    resolve,
    statuses,
)
from .download import download_url, hf_endpoint, pull, remove, sha256_file

__all__ = [
    "ModelEntry",
    "ModelStatus",
    "catalog_path",
    "default_model",
    "download_url",
    "find",
    "hf_endpoint",
    "load_catalog",
    "local_path",
    "model_status",
    "models_dir",
    "package_path",
    "pull",
    "remove",
    "resolve",
    "sha256_file",
    "statuses",
]
