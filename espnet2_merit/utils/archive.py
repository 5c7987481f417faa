"""Safe unpacking of packed model archives (ESPnet model-zoo zips and tars).

``espnet_model_zoo``'s ``ModelDownloader`` writes members wherever their names
point (``../``, absolute paths, symlinks), keys its cache on the archive's path
and turns a bad archive into a traceback. ``unpack_model`` instead:

* refuses members that would land outside the unpack directory, links, special
  files, and archives that expand absurdly (zip bombs);
* keys the cache on the archive's SHA-256, so a replaced archive unpacks anew;
* extracts into a temporary sibling directory, checks ``meta.yaml`` against the
  unpacked tree and publishes it with one rename, marked by a ``.complete`` file,
  so a killed or concurrent unpack never leaves a directory a later run trusts;
* reports a bad archive as one ``MeritInputError`` line naming the archive and
  the member or field.

Cache layout: ``<cachedir>/<first 16 hex digits of the SHA-256>/`` holds the
archive's members and ``.complete`` (JSON ``{key: path relative to the dir}``).
"""

import contextlib
import hashlib
import json
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import (
    IO,
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Tuple,
    Union,
)

import yaml
from filelock import FileLock

from espnet2_merit.errors import MeritInputError

# Refuse archives whose members declare more than this in all (a model is a few
# GB at most; this bounds the disk a hostile archive can fill).
MAX_TOTAL_BYTES = 20 * 1024**3
# Deflate tops out near 1032:1 and real weights compress ~1.1:1: a member this
# compressible (and big enough to matter) is a bomb, not a model.
MAX_RATIO = 1000.0
RATIO_MIN_BYTES = 4 * 1024**2
MARKER = ".complete"
ARCHIVE_SUFFIXES = (
    ".zip",
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz2",
    ".tar.xz",
    ".txz",
)
_KEY_DIGITS = 16
_CHUNK = 1024**2
# What reading a damaged zip or tar raises (zipfile and tarfile do not wrap the
# decompressors' errors; gzip's BadGzipFile is an OSError).
_READ_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OSError,
)


class _Member(NamedTuple):
    name: str  # as stored in the archive (for messages)
    path: str  # normalised, relative to the unpack directory
    kind: str  # "file", "dir", or what makes it unacceptable
    size: int  # declared uncompressed size
    packed: Optional[int]  # declared compressed size (zip only)
    ref: Any  # ZipInfo / TarInfo


def is_archive(path: Union[str, Path]) -> bool:
    """Whether ``path`` is named like a model archive ``unpack_model`` reads."""
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def default_cachedir() -> Path:
    """``$XDG_CACHE_HOME/espnet2_merit/models`` (``~/.cache`` without it)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "espnet2_merit" / "models"


def unpack_model(
    archive: Union[str, Path],
    cachedir: Optional[Union[str, Path]] = None,
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_ratio: float = MAX_RATIO,
    ratio_min_bytes: int = RATIO_MIN_BYTES,
) -> Dict[str, str]:
    """Unpack a local model archive (once per content) and name its files.

    Args:
        archive: A ``.zip``, ``.tar``, ``.tar.gz``/``.tgz`` (or ``.bz2``/``.xz``)
            archive holding ``meta.yaml`` and the files it names, as written by
            ``merit_pack`` (ESPnet's ``pack``).
        cachedir: Where to unpack (default: ``default_cachedir()``).
        max_total_bytes: Refuse archives whose members expand to more in all.
        max_ratio: Refuse members (and archives) expanding more than this
            many times their compressed size...
        ratio_min_bytes: ...when they expand to more than this.

    Returns:
        ``{key: absolute path}`` for every entry of meta.yaml's ``yaml_files`` and
        ``files`` (``ModelDownloader.download_and_unpack``'s mapping). Paths of
        archive members inside the YAML files are rewritten to absolute paths.

    Raises:
        MeritInputError: The archive is missing, unreadable, unsafe or not a
            model archive (the message names the archive and member or field).
    """
    archive = Path(archive)
    if not archive.is_file():
        raise MeritInputError(
            f"{archive}: no such file (or not a file); expected a model archive "
            f"({', '.join(ARCHIVE_SUFFIXES)})"
        )
    root = Path(cachedir).expanduser() if cachedir else default_cachedir()
    root = root.absolute()
    limits = (max_total_bytes, max_ratio, ratio_min_bytes)
    # Hash and unpack the same open file: replacing the archive meanwhile cannot
    # put one archive's members under the other's key.
    with archive.open("rb") as f:
        target = root / _sha256(f)[:_KEY_DIGITS]
        files = _load_complete(target)
        if files is not None:
            return files
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=root))
        try:
            f.seek(0)
            rel = _unpack_into(f, archive, tmp, target, limits)
            # Written last: a tree without it was never finished.
            (tmp / MARKER).write_text(json.dumps(rel), encoding="utf-8")
            with FileLock(str(root / f".{target.name}.lock")):
                files = _load_complete(target)
                if files is None:  # else another process finished first
                    _remove(target)  # stale: unmarked, or its files were deleted
                    os.rename(tmp, target)
                    files = {k: str(target / v) for k, v in rel.items()}
            return files
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _sha256(f: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: f.read(_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _load_complete(target: Path) -> Optional[Dict[str, str]]:
    """The files of a finished unpack directory, or None if it is not one."""
    try:
        rel = json.loads((target / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rel, dict) or not all(isinstance(v, str) for v in rel.values()):
        return None
    files = {k: str(target / v) for k, v in rel.items()}
    return files if all(Path(v).is_file() for v in files.values()) else None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _bad(archive: Path, problem: str, expected: str) -> MeritInputError:
    return MeritInputError(f"{archive}: {problem}; expected {expected}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def _reading(archive: Path, what: str) -> Iterator[None]:
    """Turn the errors of reading a damaged archive into one MeritInputError."""
    try:
        yield
    except MeritInputError:
        raise
    except _READ_ERRORS as exc:
        raise _bad(
            archive, f"{what} is corrupted ({_one_line(exc)})", "an intact archive"
        ) from exc


def _unpack_into(
    f: IO[bytes], archive: Path, tree: Path, target: Path, limits: Tuple
) -> Dict[str, str]:
    """Extract into ``tree``; returns ``{key: path relative to tree}``. YAML files
    get paths under ``target``, where ``tree`` will be renamed to."""
    with contextlib.ExitStack() as stack:
        members, open_member = _open(f, archive, stack)
        size = os.fstat(f.fileno()).st_size
        meta = _check(archive, members, size, *limits)
        _extract(archive, members, open_member, tree, limits[0])
    files = {m.path for m in members if m.kind == "file"}
    rel, yaml_paths = _read_meta(archive, tree, meta, files)
    names = _member_names(files, posixpath.dirname(meta), target)
    for path in yaml_paths:
        _rewrite_yaml(archive, tree / path, path, names)
    return rel


def _open(
    f: IO[bytes], archive: Path, stack: contextlib.ExitStack
) -> Tuple[List[_Member], Callable[[Any], IO[bytes]]]:
    name = archive.name.lower()
    if name.endswith(".zip") or (not is_archive(name) and zipfile.is_zipfile(f)):
        f.seek(0)
        with _reading(archive, "the zip archive"):
            zf = stack.enter_context(zipfile.ZipFile(f))
            members = [_zip_member(archive, info) for info in zf.infolist()]
        return members, zf.open
    f.seek(0)
    with _reading(archive, "the tar archive"):
        tf = stack.enter_context(tarfile.open(fileobj=f, mode="r:*"))
        members = [_tar_member(archive, info) for info in tf.getmembers()]
    return members, tf.extractfile


def _zip_member(archive: Path, info: zipfile.ZipInfo) -> _Member:
    mode = info.external_attr >> 16  # Unix st_mode, 0 from Windows tools
    if stat.S_ISLNK(mode):
        kind = "a symlink"
    elif info.is_dir() or stat.S_ISDIR(mode):
        kind = "dir"
    elif info.flag_bits & 0x1:
        kind = "encrypted"
    elif stat.S_IFMT(mode) in (0, stat.S_IFREG):  # pack() leaves type bits 0
        kind = "file"
    else:
        kind = "a device, fifo or socket"
    path = _safe_path(archive, info.filename)
    return _Member(info.filename, path, kind, info.file_size, info.compress_size, info)


def _tar_member(archive: Path, info: tarfile.TarInfo) -> _Member:
    if info.isreg():
        kind = "file"
    elif info.isdir():
        kind = "dir"
    elif info.issym():
        kind = "a symlink"
    elif info.islnk():
        kind = "a hard link"
    elif info.ischr() or info.isblk() or info.isfifo():
        kind = "a device or fifo"
    else:
        kind = "of an unsupported type"
    path = _safe_path(archive, info.name)
    return _Member(info.name, path, kind, info.size, None, info)


def _safe_path(archive: Path, name: str) -> str:
    """The member's path relative to the unpack directory ("." for itself)."""
    path = posixpath.normpath(name.replace("\\", "/"))
    if "\0" in path or path.startswith("/") or path.split("/")[0] == "..":
        raise _bad(
            archive,
            f"member {name!r} would be written outside the unpack directory",
            "relative member paths without '..'",
        )
    return path


def _check(
    archive: Path,
    members: List[_Member],
    archive_size: int,
    max_total: int,
    max_ratio: float,
    ratio_min: int,
) -> str:
    """Refuse unsafe or ambiguous members and bombs, by the declared sizes;
    returns the path of meta.yaml."""
    files: Dict[str, _Member] = {}
    dirs = set()
    for m in members:
        if m.kind not in ("file", "dir"):
            raise _bad(
                archive,
                f"member {m.name!r} is {m.kind}",
                "regular files and directories only",
            )
        if m.kind == "dir":
            dirs.add(m.path)
            continue
        if m.path in (".", MARKER):
            raise _bad(
                archive,
                f"member {m.name!r} clashes with the unpack directory or {MARKER!r}",
                "member files with other names",
            )
        packed = m.packed
        if packed is not None and m.size > max(ratio_min, max_ratio * packed):
            raise _bad(
                archive,
                f"member {m.name!r} expands from {packed:,} to {m.size:,} bytes",
                f"at most {max_ratio:g}:1 (a model, not a zip bomb)",
            )
        # A repeated name (pack() adds a file twice if asked to) is extracted
        # twice, the later copy winning, as unzip and tar do.
        files[m.path] = m
    for m in members:
        parent = posixpath.dirname(m.path)
        while parent:  # a file that is also a directory: one would hide the other
            if parent in files:
                raise _bad(
                    archive,
                    f"member {m.name!r} lies under file {files[parent].name!r}",
                    "a file or a directory per path",
                )
            parent = posixpath.dirname(parent)
        if m.kind == "file" and m.path in dirs:
            raise _bad(
                archive, f"member {m.name!r} is a file and a directory", "one kind"
            )
    total = sum(m.size for m in members if m.kind == "file")
    if total > max_total:
        raise _bad(
            archive,
            f"its members expand to {total:,} bytes",
            f"at most {max_total:,} (max_total_bytes)",
        )
    # A .tar.gz declares no per-member compressed size: bound the whole archive.
    if total > ratio_min and total > max_ratio * max(archive_size, 1):
        raise _bad(
            archive,
            f"it expands from {archive_size:,} to {total:,} bytes",
            f"at most {max_ratio:g}:1 (a model, not a zip bomb)",
        )
    metas = [p for p in files if posixpath.basename(p) == "meta.yaml"]
    if not metas:
        raise _bad(archive, "no meta.yaml", "a model archive written by merit_pack")
    # pack() writes meta.yaml at the top; a re-zipped directory has it one down.
    depth = min(p.count("/") for p in metas)
    top = sorted(p for p in metas if p.count("/") == depth)
    if len(top) > 1:
        raise _bad(archive, f"several meta.yaml: {top}", "one at the top")
    return top[0]


def _extract(
    archive: Path,
    members: List[_Member],
    open_member: Callable[[Any], IO[bytes]],
    tree: Path,
    max_total: int,
) -> None:
    total = 0
    for m in members:
        dest = tree / m.path
        if m.kind == "dir":
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _reading(archive, f"member {m.name!r}"):
            src = open_member(m.ref)
        # Count what comes out: the declared sizes checked so far may lie.
        with src, open(dest, "wb") as out:
            written = 0
            while True:
                with _reading(archive, f"member {m.name!r}"):
                    chunk = src.read(_CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                total += len(chunk)
                if written > m.size or total > max_total:
                    raise _bad(
                        archive,
                        f"member {m.name!r} holds more than it declares "
                        f"({m.size:,} bytes) or than max_total_bytes",
                        "honest member sizes",
                    )
                out.write(chunk)


def _read_meta(
    archive: Path, tree: Path, meta: str, files: set
) -> Tuple[Dict[str, str], List[str]]:
    """``{key: path}`` of meta.yaml's ``yaml_files`` then ``files``, paths relative
    to the tree, and the paths of the YAML files."""
    try:
        d = yaml.safe_load((tree / meta).read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _bad(archive, f"{meta} is not YAML ({_one_line(exc)})", "YAML") from exc
    expected = "'files' and 'yaml_files' mappings of key: path"
    if not isinstance(d, dict):
        raise _bad(archive, f"{meta} is not a mapping", expected)
    rel: Dict[str, str] = {}
    yaml_paths = []
    for section in ("yaml_files", "files"):
        entries = d.get(section) or {}
        if not isinstance(entries, dict):
            raise _bad(archive, f"{meta} '{section}' is not a mapping", expected)
        for key, value in entries.items():
            path = _meta_path(archive, f"{meta} '{section}.{key}'", value, meta, files)
            rel[str(key)] = path
            if section == "yaml_files":
                yaml_paths.append(path)
    if not rel:
        raise _bad(archive, f"{meta} names no files", expected)
    return rel, yaml_paths


def _meta_path(archive: Path, field: str, value: Any, meta: str, files: set) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(archive, f"{field} is {value!r}", "a path inside the archive")
    # pack() records a file outside its working directory by its absolute path,
    # while zip and tar store it without the leading "/": look it up that way.
    rel = value.replace("\\", "/").lstrip("/")
    # Relative to meta.yaml's directory, else to the top (ESPnet's unpack).
    candidates = [
        posixpath.normpath(posixpath.join(posixpath.dirname(meta), rel)),
        posixpath.normpath(rel),
    ]
    inside = [p for p in candidates if p.split("/")[0] != ".."]
    if not inside:
        raise _bad(archive, f"{field} = {value!r} leaves the archive", "a member")
    for path in inside:
        if path in files:
            return path
    raise _bad(archive, f"{field} names {value!r}, which the archive lacks", "a member")


def _member_names(files: set, base: str, target: Path) -> Dict[PurePosixPath, str]:
    """How a YAML file may name a member (as pack() wrote it), to its final path."""
    names = {}
    for path in files:
        final = str(target / path)
        names[PurePosixPath(path)] = final
        names[PurePosixPath("/" + path)] = final
        if base and path.startswith(base + "/"):
            names[PurePosixPath(path[len(base) + 1 :])] = final
    return names


def _rewrite_yaml(
    archive: Path, file: Path, path: str, names: Dict[PurePosixPath, str]
) -> None:
    """Point the member paths a config holds (``stats_file: data/...``) at the
    unpacked files, as ESPnet's unpack does; other values are kept."""
    try:
        conf = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _bad(
            archive, f"member {path!r} is not YAML ({_one_line(exc)})", "YAML"
        ) from exc
    new = _relink(conf, names)
    if new != conf:
        with file.open("w", encoding="utf-8") as out:
            yaml.safe_dump(new, out, allow_unicode=True, sort_keys=False)


def _relink(value: Any, names: Dict[PurePosixPath, str]) -> Any:
    if isinstance(value, dict):
        return {k: _relink(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_relink(v, names) for v in value]
    if isinstance(value, str):
        return names.get(PurePosixPath(value), value)
    return value
