"""The model catalog: which models Breeze knows, where their files are, and how a name resolves.

The catalog is a TOML file of `[[model]]` tables (docs/models.md lists the fields). Files that
ship inside an installed Python package are used in place; downloaded and assembled files live
in `models_dir()`. A model may be a directory (a Kaldi model for vosk): it ships in a package
or downloads as a `.zip` that is unpacked into a directory of the same name.

Every name a catalog entry gives for `models_dir()` is checked when the catalog is read: one
plain file name, so that nothing Breeze writes or deletes for a model can be outside it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import platformdirs

from ..errors import BreezeError
from ..types import Capability

__all__ = [
    "GGUF_MAGIC",
    "LANGUAGE_CODE",
    "ModelEntry",
    "ModelStatus",
    "Record",
    "catalog_path",
    "default_model",
    "entry_for",
    "disk_size",
    "find",
    "for_language",
    "integrity_problem",
    "load_catalog",
    "local_path",
    "model_status",
    "models_dir",
    "normalize_language",
    "package_path",
    "read_record",
    "resolve",
    "statuses",
]

SOURCES = ("package", "huggingface", "url")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UNPACKED = re.compile(r"^# unpacked (\d+) bytes$")
# Separators on some platform ("C:x" changes drive on Windows), and what no file name holds.
_NOT_IN_NAMES = ("/", "\\", ":", "\x00")
GGUF_MAGIC = b"GGUF"
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One `[[model]]` of the catalog, validated."""

    id: str
    name: str
    capability: str
    source: str
    file: str = ""
    package: str = ""
    dist: str = ""
    assemble: str = ""
    repo: str = ""
    revision: str = "main"
    url: str = ""
    size: int = 0
    sha256: str = ""
    license: str = ""
    context_length: int = 0
    default: bool = False
    description: str = ""
    language: str = ""
    runner: str = ""
    # How a chat becomes a prompt when the file has no template of its own (an LLM runner's
    # format name, such as "gemma", or "transcript" for a base model)
    chat_format: str = ""
    # The system prompt a chat gets when it has none: a tiny model answers plain questions
    # far better with the one it was tuned on than with none
    system_prompt: str = ""

    @property
    def filename(self) -> str:
        """The name of the file in `models_dir()` (downloaded or assembled)."""
        return PurePosixPath(self.file).name

    @property
    def archive(self) -> bool:
        """A `.zip` download, unpacked into the directory `local_name`."""
        return not self.in_package and self.filename.endswith(".zip")

    @property
    def local_name(self) -> str:
        """What the model is in `models_dir()`: the file, or the unpacked directory."""
        return self.filename.removesuffix(".zip") if self.archive else self.filename

    @property
    def pip_name(self) -> str:
        """The distribution to `pip install` for a package source."""
        return self.dist or self.package.replace("_", "-")

    @property
    def in_package(self) -> bool:
        """True when the file is used in place inside an installed package."""
        return self.source == "package" and not self.assemble


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """A row of `breeze models list`."""

    id: str
    name: str
    capability: str
    source: str
    size: int
    present: bool
    path: str | None
    license: str
    default: bool = False
    corrupt: bool = False  # present, but not what was installed (see `problem`)
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_NUMBERS: dict[str, type] = {"size": int, "context_length": int, "default": bool}
_FIELD_TYPES: dict[str, type] = {f.name: str for f in fields(ModelEntry)} | _NUMBERS
_REQUIRED = {"package": ("package", "file"), "huggingface": ("repo", "file"), "url": ("url",)}


def catalog_path() -> Path:
    env = os.environ.get("BREEZE_CATALOG")
    if env:
        return Path(env).expanduser()
    return Path(str(resources.files("breeze.assets").joinpath("models.toml")))


def load_catalog(path: Path | None = None) -> list[ModelEntry]:
    """Read and validate the catalog (default: $BREEZE_CATALOG, else the packaged catalog)."""
    path = catalog_path() if path is None else Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BreezeError("E501", f"model catalog {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BreezeError("E400", f"model catalog {path} is not valid TOML: {exc}") from None
    tables = data.get("model", [])
    if not isinstance(tables, list):
        raise BreezeError("E400", f"model catalog {path}: `model` must be an array of tables")
    entries = [_entry(path, index, table) for index, table in enumerate(tables)]
    seen: dict[str, str] = {}
    for entry in entries:
        keys = [f"id {entry.id!r}"] + [f"default {entry.capability}"] * entry.default
        for key in keys:
            if key in seen:
                first = seen[key]
                raise BreezeError("E400", f"model catalog {path}: model {entry.id!r}: "
                                          f"{key} is already taken by model {first!r}")
            seen[key] = entry.id
    return entries


def _entry(path: Path, index: int, table: Any) -> ModelEntry:
    label = f"model #{index + 1}"
    if isinstance(table, dict) and isinstance(table.get("id"), str):
        label = f"model {table['id']!r}"

    def bad(problem: str) -> BreezeError:
        return BreezeError("E400", f"model catalog {path}: {label}: {problem}")

    if not isinstance(table, dict):
        raise bad("each entry must be a table")
    unknown = sorted(set(table) - set(_FIELD_TYPES))
    if unknown:
        raise bad(f"unknown field(s) {', '.join(unknown)}")
    for key, value in table.items():
        expected = _FIELD_TYPES[key]
        # bool is an int in Python: reject true/false where a number is expected.
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise bad(f"field {key!r} must be a {expected.__name__}, not {value!r}")
    for key in ("id", "name", "capability", "source"):
        if not table.get(key):
            raise bad(f"missing field {key!r}")
    values = dict(table)
    if not _ID.match(values["id"]):
        raise bad("id must be lowercase letters, digits, '.', '_' or '-'")
    values["capability"] = values["capability"].upper()
    if values["capability"] not in {c.value for c in Capability}:
        raise bad(f"unknown capability {table['capability']!r}")
    source = values["source"]
    if source not in SOURCES:
        raise bad(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    for key in _REQUIRED[source]:
        if not values.get(key):
            raise bad(f"a {source} source needs field {key!r}")
    if values.get("assemble") and (source != "package" or ":" not in values["assemble"]):
        raise bad("assemble must be 'module:function' on a package source")
    named_by = "file"
    if source == "url":
        url = urlparse(values["url"])
        if url.scheme not in ("http", "https") or not url.netloc:
            raise bad(f"url must be http(s), not {values['url']!r}")
        if "file" not in values:
            values["file"], named_by = url.path.rpartition("/")[2], "url"
        if not values["file"]:
            raise bad("field 'file' is needed when the url does not end in a file name")
    problem = _file_problem(values["file"], source, bool(values.get("assemble")))
    if problem:
        if named_by == "url":
            raise bad(f"field 'url': its last path segment {problem}; set 'file' to a file name")
        raise bad(f"field 'file': {problem}")
    if values.get("size", 0) < 0 or values.get("context_length", 0) < 0:
        raise bad("size and context_length cannot be negative")
    values["language"] = normalize_language(values.get("language", ""))
    if values["language"] and not LANGUAGE_CODE.match(values["language"]):
        raise bad(f"language must be a code such as 'en-us' or 'ko', not {table['language']!r}")
    values["sha256"] = values.get("sha256", "").lower()
    if values["sha256"] and not _SHA256.match(values["sha256"]):
        raise bad("sha256 must be 64 hex digits or empty")
    return ModelEntry(**values)


def _name_problem(name: str) -> str:
    """Why `name` is not one file name ('' when it is)."""
    if name in ("", ".", ".."):
        return f"{name!r} is not a file name"
    for char in _NOT_IN_NAMES:
        if char in name:
            return f"{name!r} contains {char!r}"
    return ""


def _path_problem(path: str) -> str:
    """Why `path` is not a relative path of file names such as 'sub/model.gguf'."""
    if path.startswith("/"):
        return f"{path!r} is an absolute path"
    for part in path.split("/"):
        if problem := _name_problem(part):
            return f"{path!r} is not a relative path of file names ({problem})"
    return ""


def _file_problem(file: str, source: str, assembled: bool) -> str:
    """Why the entry's `file` cannot be used ('' when it can): a file in a package or a Hugging
    Face repository may sit in folders; what lands in `models_dir()` is one file name."""
    if source == "huggingface" or (source == "package" and not assembled):
        problem = _path_problem(file)
    else:
        problem = _name_problem(file)
    if problem or (source == "package" and not assembled):
        return problem
    name = file.rpartition("/")[2]
    if name.endswith(".zip") and _name_problem(name.removesuffix(".zip")):
        return f"{file!r} would unpack into {name.removesuffix('.zip')!r}, which is not a file name"
    return ""


def models_dir() -> Path:
    """Where downloaded and assembled models go ($BREEZE_MODELS_DIR or the user cache)."""
    env = os.environ.get("BREEZE_MODELS_DIR")
    base = Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("breeze")) / "models"
    base.mkdir(parents=True, exist_ok=True)
    return base


def find(model_id: str, catalog: list[ModelEntry] | None = None) -> ModelEntry:
    entries = load_catalog() if catalog is None else catalog
    for entry in entries:
        if entry.id == model_id:
            return entry
    known = ", ".join(entry.id for entry in entries) or "none"
    raise BreezeError("E404", f"unknown model {model_id!r} (known: {known})")


def entry_for(model: str | None, path: Path, capability: str = "LLM") -> ModelEntry | None:
    """The catalog entry that `model` (an id, None for the default, or a file path) resolved
    to `path` stands for; None for a file the catalog does not know."""
    if model is None:
        return default_model(capability)
    for entry in load_catalog():
        if entry.capability != capability.upper():
            continue
        if entry.id == model.strip():
            return entry
        present = local_path(entry)
        if present is not None and present.resolve() == path.resolve():
            return entry
    return None


def default_model(capability: str = "LLM") -> ModelEntry:
    capability = capability.upper()
    for entry in load_catalog():
        if entry.default and entry.capability == capability:
            return entry
    raise BreezeError("E404", f"the model catalog has no default {capability} model")


def package_path(entry: ModelEntry) -> Path:
    """The directory of an installed package, without importing it (E501 when missing)."""
    try:
        spec = importlib.util.find_spec(entry.package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise BreezeError(
            "E501",
            f"model {entry.id} needs the package {entry.package}: pip install {entry.pip_name}",
        )
    return Path(locations[0])


def local_path(entry: ModelEntry) -> Path | None:
    """Where the model's file is when present, else None."""
    try:
        path = package_path(entry) / entry.file if entry.in_package else None
    except BreezeError:
        return None
    path = path or models_dir() / entry.local_name
    return path if path.exists() else None


def normalize_language(code: str) -> str:
    """'en_US' and 'EN-us' are 'en-us'."""
    return code.strip().lower().replace("_", "-")


def for_language(
    language: str, runner: str, capability: str = "ASR", catalog: list[ModelEntry] | None = None
) -> list[ModelEntry]:
    """The catalog's models of `runner` for a language code, best first: present before absent,
    the exact code ('en-us') before the same language ('en-in' for 'en'), then catalog order."""
    code = normalize_language(language)
    base = code.split("-")[0]
    matches = [
        entry
        for entry in (load_catalog() if catalog is None else catalog)
        if entry.capability == capability.upper()
        and entry.runner in ("", runner)
        and entry.language.split("-")[0] == base
    ]
    ranked = sorted(
        enumerate(matches),
        key=lambda pair: (local_path(pair[1]) is None, pair[1].language != code, pair[0]),
    )
    return [entry for _, entry in ranked]


def resolve(model: str | None, capability: str | None = "LLM") -> Path:
    """A model id, a path or None (the default model) -> an existing model file.

    Assembles a package-assembled model on first use; never downloads (E501 says how to).
    `capability=None` accepts an id of any capability.
    """
    if model is None:
        return _entry_path(default_model(capability or "LLM"))
    text = model.strip()
    if not text:
        raise BreezeError("E400", "the model name is empty: give a catalog id or a file path")
    candidate = Path(text).expanduser()
    if candidate.is_dir() and (capability or "").upper() == "LLM":
        raise BreezeError("E400", f"{candidate} is a directory: give the path of a GGUF file")
    if candidate.exists():
        return candidate.resolve()
    if text.endswith(".gguf") or "/" in text or os.sep in text:
        raise BreezeError("E501", f"model file {candidate} does not exist")
    entry = find(text)
    if capability is not None and entry.capability != capability.upper():
        raise BreezeError(
            "E400", f"model {entry.id} is a {entry.capability} model, not {capability.upper()}"
        )
    return _entry_path(entry)


def packaged_file(entry: ModelEntry) -> Path:
    """The model file inside its installed package (E501 when the package lacks it)."""
    path = package_path(entry) / entry.file
    if not path.exists():
        raise BreezeError(
            "E501", f"package {entry.package} is installed but has no file {entry.file}"
        )
    return path


def _entry_path(entry: ModelEntry) -> Path:
    if entry.in_package:
        return packaged_file(entry)
    present = local_path(entry)
    if present is not None:
        return present
    if entry.assemble:
        from .download import pull  # download imports this module

        return pull(entry)
    raise BreezeError(
        "E501", f"model {entry.id} is not downloaded: run `breeze models pull {entry.id}`"
    )


def model_status(entry: ModelEntry) -> ModelStatus:
    """A row of `breeze models list`: cheap, it checks sizes but hashes nothing."""
    path = local_path(entry)
    size = entry.size or (disk_size(path) if path is not None else 0)
    source = "package (assembled)" if entry.assemble else entry.source
    problem = integrity_problem(entry, path) if path is not None else ""
    return ModelStatus(
        id=entry.id,
        name=entry.name,
        capability=entry.capability,
        source=source,
        size=size,
        present=path is not None,
        path=str(path) if path is not None else None,
        license=entry.license,
        default=entry.default,
        corrupt=bool(problem),
        problem=problem,
    )


@dataclass(frozen=True, slots=True)
class Record:
    """`<file>.sha256`, written beside a download whose sha256 the catalog does not pin: the
    `sha256sum` line of the downloaded file, then, for an archive, the bytes it unpacked to."""

    sha256: str
    unpacked: int | None = None

    def text(self, name: str) -> str:
        lines = [f"{self.sha256}  {name}"]
        if self.unpacked is not None:
            lines.append(f"# unpacked {self.unpacked} bytes")  # sha256sum skips '#' lines
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Record | None:
        """The record in `text`; None when it holds no sha256 line."""
        lines = text.splitlines()
        words = lines[0].split() if lines else []
        if not words or not _SHA256.match(words[0].lower()):
            return None
        sizes = [int(m[1]) for line in lines[1:] if (m := _UNPACKED.match(line.strip()))]
        return cls(words[0].lower(), sizes[0] if sizes else None)


def read_record(entry: ModelEntry) -> Record | None:
    """The `.sha256` record of a downloaded model, None when there is none (or it is garbled)."""
    try:
        text = (models_dir() / f"{entry.filename}.sha256").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return Record.parse(text)


def integrity_problem(entry: ModelEntry, path: Path) -> str:
    """Why the downloaded or assembled model at `path` is not what was installed, judged from
    sizes and the first bytes only (cheap enough for every listing); '' when these look right.

    A file is held to the catalog's `size`, a `.gguf` to the GGUF magic, an unpacked archive
    to the size its record says it unpacked to. `pull` also compares hashes.
    """
    if entry.in_package:
        return ""
    try:
        if path.is_dir():
            record = read_record(entry)
            if record is None or record.unpacked is None:
                return ""
            size = disk_size(path)
            if size != record.unpacked:
                return f"its files hold {size} bytes, {record.unpacked} were unpacked"
            return ""
        size = path.stat().st_size
        if entry.size and not entry.archive and size != entry.size:
            return f"it is {size} bytes, the catalog says {entry.size}"
        if path.suffix.lower() == ".gguf" and not _starts_with(path, GGUF_MAGIC):
            return "it does not start with the GGUF magic bytes"
    except OSError as exc:
        return f"it cannot be read: {exc}"
    return ""


def _starts_with(path: Path, magic: bytes) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(magic)) == magic


def disk_size(path: Path) -> int:
    """The bytes of a file, or of every file under a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(child.stat().st_size for child in path.rglob("*") if child.is_file())


def statuses(catalog: list[ModelEntry] | None = None) -> list[ModelStatus]:
    """Every catalog entry with whether its file is present; nothing is downloaded."""
    return [model_status(entry) for entry in (load_catalog() if catalog is None else catalog)]
