"""Model management: the catalog, where files are, and getting them (download or assembly)."""

from .catalog import (
    ModelEntry,
    ModelStatus,
    catalog_path,
    default_model,
    find,
    for_language,
    load_catalog,
    local_path,
    model_status,
    models_dir,
    normalize_language,
    package_path,
    resolve,
    statuses,
)
from .download import DownloadHooks, download_url, hf_endpoint, pull, remove, sha256_file
from .select import Located, locate

__all__ = [
    "DownloadHooks",
    "Located",
    "ModelEntry",
    "ModelStatus",
    "catalog_path",
    "default_model",
    "download_url",
    "find",
    "for_language",
    "hf_endpoint",
    "load_catalog",
    "local_path",
    "locate",
    "model_status",
    "models_dir",
    "normalize_language",
    "package_path",
    "pull",
    "remove",
    "resolve",
    "sha256_file",
    "statuses",
]
