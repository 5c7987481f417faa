"""unpack_model: safe, content-keyed, atomic unpacking of packed model archives."""

import hashlib
import io
import os
import re
import stat
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
import yaml

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils import archive as archive_mod
from espnet2_merit.utils.archive import (
    MARKER,
    default_cachedir,
    is_archive,
    unpack_model,
)

META = {"files": {"model_file": "model.pth"}, "yaml_files": {"train_config": "c.yaml"}}
CONFIG = b"fusion: x\nnormalize_conf:\n  stats_file: data/stats.npz\n"


def _zip(path: Path, members=None, meta=META, method=zipfile.ZIP_DEFLATED) -> Path:
    """A model zip: meta.yaml (unless ``meta`` is None), c.yaml, model.pth and
    data/stats.npz, with ``members`` added or replacing them."""
    files = {"c.yaml": CONFIG, "model.pth": b"WEIGHTS-PAYLOAD", "data/stats.npz": b"s"}
    if meta is not None:
        files["meta.yaml"] = yaml.safe_dump(meta).encode()
    files.update(members or {})
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, *extra: tarfile.TarInfo) -> Path:
    """A model .tar.gz with the members of ``_zip`` and ``extra`` (data-less)."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in (
            ("meta.yaml", yaml.safe_dump(META).encode()),
            ("c.yaml", CONFIG),
            ("model.pth", b"WEIGHTS-PAYLOAD"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return path


def _tarinfo(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def _key_dir(cache: Path, archive: Path) -> Path:
    return cache / hashlib.sha256(archive.read_bytes()).hexdigest()[:16]


def _leftovers(cache: Path):
    """Unpack directories still in the cache that are not published ones."""
    return (
        [p.name for p in cache.iterdir() if ".tmp-" in p.name] if cache.exists() else []
    )


def test_packed_zip_unpacks_to_absolute_paths_and_relinks_config(tmp_path, monkeypatch):
    """A zip as merit_pack writes it: pack() run in a staging dir, the config
    naming the statistics it ships by their relative member path."""
    from espnet2.main_funcs.pack_funcs import pack

    stage = tmp_path / "stage"
    (stage / "data").mkdir(parents=True)
    (stage / "data" / "stats.npz").write_bytes(b"stats")
    (stage / "config.yaml").write_text(
        "normalize_conf:\n  stats_file: data/stats.npz\n"
    )
    (stage / "model.pth").write_bytes(b"weights")
    monkeypatch.chdir(stage)
    pack(
        files={"model_file": "model.pth"},
        yaml_files={"train_config": "config.yaml"},
        option=["data/stats.npz"],
        outpath=str(tmp_path / "m.zip"),
    )
    monkeypatch.chdir(tmp_path)

    files = unpack_model(tmp_path / "m.zip", tmp_path / "cache")

    assert set(files) == {"train_config", "model_file"}
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in files.values())
    assert Path(files["model_file"]).read_bytes() == b"weights"
    key_dir = _key_dir(tmp_path / "cache", tmp_path / "m.zip")
    assert Path(files["model_file"]).parent == key_dir
    # The config's relative member path now points at the unpacked statistics.
    conf = yaml.safe_load(Path(files["train_config"]).read_text())
    assert Path(conf["normalize_conf"]["stats_file"]).read_bytes() == b"stats"
    assert unpack_model(tmp_path / "m.zip", tmp_path / "cache") == files


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tgz"])
def test_espnet_pack_tar_with_paths_outside_its_working_directory(
    tmp_path, monkeypatch, suffix
):
    """pack() records files outside its cwd by absolute path (stored without the
    leading "/"): they resolve inside the unpack dir, not on this machine."""
    from espnet2.main_funcs.pack_funcs import pack

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "model.pth").write_bytes(b"weights")
    (outside / "c.yaml").write_text("fusion: x\n")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    out = tmp_path / f"m{suffix}"
    pack(
        files={"model_file": str(outside / "model.pth")},
        yaml_files={"train_config": str(outside / "c.yaml")},
        outpath=str(out),
    )
    with tarfile.open(out) as tf:
        meta = yaml.safe_load(tf.extractfile("meta.yaml"))
    assert Path(meta["files"]["model_file"]).is_absolute()

    files = unpack_model(out, tmp_path / "cache")

    key_dir = _key_dir(tmp_path / "cache", out)
    assert Path(files["model_file"]).is_relative_to(key_dir)
    assert Path(files["model_file"]).read_bytes() == b"weights"


def test_meta_yaml_under_a_top_directory(tmp_path):
    zip_path = tmp_path / "m.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("top/meta.yaml", yaml.safe_dump(META))
        zf.writestr("top/c.yaml", "stats: data/stats.npz\n")
        zf.writestr("top/model.pth", "w")
        zf.writestr("top/data/stats.npz", "s")

    files = unpack_model(zip_path, tmp_path / "cache")

    assert Path(files["model_file"]).parts[-2:] == ("top", "model.pth")
    conf = yaml.safe_load(Path(files["train_config"]).read_text())
    assert Path(conf["stats"]).read_text() == "s"


@pytest.mark.parametrize("name", ["../../evil.txt", "a/../../evil.txt"])
def test_zip_member_leaving_the_cache_is_refused(tmp_path, name):
    zip_path = _zip(tmp_path / "m.zip", {name: b"pwned"})
    cache = tmp_path / "x" / "cache"
    with pytest.raises(MeritInputError, match=rf"m\.zip: member '{name}'.*outside"):
        unpack_model(zip_path, cache)
    assert not list(tmp_path.rglob("evil.txt"))
    assert not _leftovers(cache)


def test_absolute_zip_member_is_refused(tmp_path):
    target = tmp_path / "abs_evil.txt"
    zip_path = _zip(tmp_path / "m.zip", {str(target): b"pwned"})
    with pytest.raises(MeritInputError, match=rf"member '{target}'.*outside"):
        unpack_model(zip_path, tmp_path / "cache")
    assert not target.exists()
    assert not list(tmp_path.rglob("abs_evil.txt"))


def test_tar_member_leaving_the_cache_is_refused(tmp_path):
    info = tarfile.TarInfo("../evil.txt")
    tar = _tar(tmp_path / "m.tar.gz", info)
    with pytest.raises(MeritInputError, match=r"m\.tar\.gz: member '\.\./evil\.txt'"):
        unpack_model(tar, tmp_path / "x" / "cache")
    assert not list(tmp_path.rglob("evil.txt"))


def _zip_symlink(path: Path) -> Path:
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip_with(path, info, b"/etc/passwd")


def _zip_with(path: Path, info: zipfile.ZipInfo, data: bytes) -> Path:
    _zip(path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(info, data)
    return path


@pytest.mark.parametrize(
    "make, what",
    [
        (lambda p: _tar(p, _tarinfo("link", tarfile.SYMTYPE, "/etc")), "a symlink"),
        (lambda p: _tar(p, _tarinfo("hard", tarfile.LNKTYPE, "/etc/x")), "a hard link"),
        (lambda p: _tar(p, _tarinfo("fifo", tarfile.FIFOTYPE)), "a device or fifo"),
        (_zip_symlink, "a symlink"),
    ],
)
def test_links_and_special_members_are_refused(tmp_path, make, what):
    path = make(tmp_path / ("m.zip" if make is _zip_symlink else "m.tar.gz"))
    with pytest.raises(MeritInputError, match=rf"{path.name}: member '\w+' is {what}"):
        unpack_model(path, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.pth"))


def test_file_that_is_also_a_directory_is_refused(tmp_path):
    zip_path = _zip(tmp_path / "m.zip", {"model.pth/x": b""})
    with pytest.raises(MeritInputError, match=r"member 'model.pth/x' lies under"):
        unpack_model(zip_path, tmp_path / "cache")


def _set_zip_header(path: Path, name: str, local: int, central: int, value: bytes):
    """Overwrite a field of ``name``'s local header and central directory record
    (zipfile itself would not write a lying one)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        offset = zf.getinfo(name).header_offset
    record = data.rindex(name.encode()) - 46  # the record: 46 bytes, then the name
    assert data[record : record + 4] == b"PK\x01\x02"
    data[offset + local : offset + local + len(value)] = value
    data[record + central : record + central + len(value)] = value
    path.write_bytes(bytes(data))


def test_encrypted_member_is_refused(tmp_path):
    zip_path = _zip(tmp_path / "m.zip", {"secret.bin": b"x"})
    _set_zip_header(zip_path, "secret.bin", 6, 8, b"\x01\x00")  # flag bit 0
    with pytest.raises(MeritInputError, match=r"member 'secret.bin' is encrypted"):
        unpack_model(zip_path, tmp_path / "cache")


def test_bomb_by_declared_total_size_is_refused(tmp_path):
    zip_path = _zip(tmp_path / "m.zip", {"big.bin": os.urandom(3000)})
    with pytest.raises(MeritInputError, match=r"m\.zip: .*expand to.*max_total_bytes"):
        unpack_model(zip_path, tmp_path / "cache", max_total_bytes=2000)
    assert unpack_model(zip_path, tmp_path / "cache", max_total_bytes=4000)


def test_bomb_by_member_compression_ratio_is_refused(tmp_path):
    zip_path = _zip(tmp_path / "m.zip", {"zeros.bin": bytes(200_000)})
    limits = dict(max_ratio=50, ratio_min_bytes=100_000)
    with pytest.raises(MeritInputError, match=r"m\.zip: member 'zeros.bin' expands"):
        unpack_model(zip_path, tmp_path / "cache", **limits)
    assert not _leftovers(tmp_path / "cache")
    # Under ratio_min_bytes the same ratio is harmless.
    assert unpack_model(zip_path, tmp_path / "cache", max_ratio=50)


def test_tar_gz_bomb_by_archive_ratio_is_refused(tmp_path):
    info = tarfile.TarInfo("zeros.bin")
    info.size = 1_000_000
    tar = tmp_path / "m.tgz"
    with tarfile.open(tar, "w:gz") as tf:
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(MeritInputError, match=r"m\.tgz: it expands from"):
        unpack_model(tar, tmp_path / "cache", max_ratio=50, ratio_min_bytes=100_000)


def test_understated_size_in_the_central_directory_is_caught(tmp_path):
    """A stored member declaring 10 of its 1000 bytes never yields more than 10
    (zipfile stops there) and fails its CRC: an error, no file."""
    zip_path = _zip(tmp_path / "m.zip", {"w.bin": b"a" * 1000}, method=0)
    _set_zip_header(zip_path, "w.bin", 22, 24, (10).to_bytes(4, "little"))
    with pytest.raises(MeritInputError, match=r"m\.zip: member 'w\.bin' is corrupted"):
        unpack_model(zip_path, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("w.bin"))


def test_bytes_beyond_the_declared_size_are_caught_while_extracting(
    tmp_path, monkeypatch
):
    """Declared sizes are checked first, but what comes out is counted too."""
    real = archive_mod._zip_member

    def lying(archive, info):
        member = real(archive, info)
        return member._replace(size=5) if info.filename == "model.pth" else member

    monkeypatch.setattr(archive_mod, "_zip_member", lying)
    with pytest.raises(MeritInputError, match=r"member 'model.pth' holds more"):
        unpack_model(_zip(tmp_path / "m.zip"), tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("model.pth"))


def test_replaced_archive_at_the_same_path_unpacks_anew(tmp_path):
    path = _zip(tmp_path / "m.zip", {"model.pth": b"one"})
    first = unpack_model(path, tmp_path / "cache")
    path.unlink()
    _zip(path, {"model.pth": b"two"})
    second = unpack_model(path, tmp_path / "cache")
    assert Path(second["model_file"]).read_bytes() == b"two"
    assert Path(first["model_file"]).read_bytes() == b"one"


def test_interrupted_extraction_is_redone(tmp_path, monkeypatch):
    path = _zip(tmp_path / "m.zip")
    cache = tmp_path / "cache"
    real_open = zipfile.ZipFile.open
    calls = []

    def dying(self, name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # a kill half-way through the members
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", dying)
    with pytest.raises(KeyboardInterrupt):
        unpack_model(path, cache)
    assert not _key_dir(cache, path).exists() and not _leftovers(cache)

    monkeypatch.setattr(zipfile.ZipFile, "open", real_open)
    files = unpack_model(path, cache)
    assert Path(files["model_file"]).read_bytes() == b"WEIGHTS-PAYLOAD"


def test_directory_without_marker_is_removed_and_redone(tmp_path):
    """What a killed unpack of another version could leave: files, no marker."""
    path = _zip(tmp_path / "m.zip")
    stale = _key_dir(tmp_path / "cache", path)
    stale.mkdir(parents=True)
    (stale / "model.pth").write_bytes(b"half")
    (stale / "junk").write_bytes(b"")
    (tmp_path / "cache" / f".{stale.name}.tmp-killed").mkdir()  # never trusted

    files = unpack_model(path, tmp_path / "cache")

    assert Path(files["model_file"]).read_bytes() == b"WEIGHTS-PAYLOAD"
    assert not (stale / "junk").exists() and (stale / MARKER).is_file()


def test_complete_directory_missing_a_file_is_redone(tmp_path):
    path = _zip(tmp_path / "m.zip")
    files = unpack_model(path, tmp_path / "cache")
    Path(files["model_file"]).unlink()
    assert Path(unpack_model(path, tmp_path / "cache")["model_file"]).is_file()


def test_losing_the_rename_race_keeps_the_winner(tmp_path, monkeypatch):
    """Another process publishes while this one extracts: this one discards its
    own copy and returns the winner's files."""
    path = _zip(tmp_path / "m.zip")
    cache = tmp_path / "cache"
    real = archive_mod._unpack_into
    winner, raced = {}, []

    def racing(*args):
        rel = real(*args)
        if not raced:  # the other process: one full unpack, published first
            raced.append(True)
            winner.update(unpack_model(path, cache))
            raced.append(os.stat(_key_dir(cache, path)).st_ino)
        return rel

    monkeypatch.setattr(archive_mod, "_unpack_into", racing)
    assert unpack_model(path, cache) == winner
    assert os.stat(_key_dir(cache, path)).st_ino == raced[1]  # not replaced
    assert all(Path(p).is_file() for p in winner.values())
    assert not _leftovers(cache)


def test_concurrent_unpacks_all_end_with_a_valid_directory(tmp_path):
    path = _zip(tmp_path / "m.zip", {"big.bin": os.urandom(2_000_000)})
    results, errors = [], []

    def run():
        try:
            results.append(unpack_model(path, tmp_path / "cache"))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 6
    assert all(r == results[0] for r in results)
    assert Path(results[0]["model_file"]).read_bytes() == b"WEIGHTS-PAYLOAD"
    assert not _leftovers(tmp_path / "cache")


def _corrupt_crc(path: Path) -> Path:
    _zip(path, method=zipfile.ZIP_STORED)
    data = path.read_bytes().replace(b"WEIGHTS-PAYLOAD", b"WEIGHTS-PAYLOAX")
    path.write_bytes(data)
    return path


def _truncated(path: Path) -> Path:
    _zip(path, {"big.bin": os.urandom(5000)})
    path.write_bytes(path.read_bytes()[:3000])
    return path


def _bytes(path: Path) -> Path:
    path.write_bytes(os.urandom(4096))
    return path


@pytest.mark.parametrize(
    "name, make, pattern",
    [
        ("m.zip", _bytes, r"the zip archive is corrupted"),
        ("m.tar.gz", _bytes, r"the tar archive is corrupted"),
        ("m.bin", _bytes, r"the tar archive is corrupted"),
        ("m.zip", _truncated, r"the zip archive is corrupted"),
        ("m.zip", _corrupt_crc, r"member 'model.pth' is corrupted \(Bad CRC-32"),
        ("m.zip", lambda p: _zip(p, meta=None), r"no meta.yaml"),
        ("m.zip", lambda p: _zip(p, meta=["a"]), r"meta.yaml is not a mapping"),
        ("m.zip", lambda p: _zip(p, meta={"files": {}}), r"meta.yaml names no files"),
        (
            "m.zip",
            lambda p: _zip(p, meta={"files": ["model.pth"]}),
            r"meta.yaml 'files' is not a mapping",
        ),
        (
            "m.zip",
            lambda p: _zip(p, meta={"files": {"model_file": "gone.pth"}}),
            r"meta.yaml 'files.model_file' names 'gone.pth', which the archive lacks",
        ),
        (
            "m.zip",
            lambda p: _zip(p, meta={"files": {"model_file": "../../etc/passwd"}}),
            r"'files.model_file' = '../../etc/passwd' leaves the archive",
        ),
        (
            "m.zip",
            lambda p: _zip(p, {"meta.yaml": b"files: [unclosed"}),
            r"meta.yaml is not YAML",
        ),
        (
            "m.zip",
            lambda p: _zip(p, {"c.yaml": b"a: [unclosed"}),
            r"member 'c.yaml' is not YAML",
        ),
        (
            "missing.zip",
            lambda p: p,
            r"no such file \(or not a file\); expected a model archive",
        ),
        ("adir.zip", lambda p: p.mkdir() or p, r"not a file"),
    ],
)
def test_bad_archives_give_one_line_errors(tmp_path, name, make, pattern):
    path = make(tmp_path / name)
    with pytest.raises(MeritInputError) as err:
        unpack_model(path, tmp_path / "cache")
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert "expected" in message
    assert re.search(pattern, message), message
    assert not _leftovers(tmp_path / "cache")


def test_is_archive():
    assert all(map(is_archive, ["m.zip", "a/M.ZIP", "m.tar", "m.tar.gz", "m.tgz"]))
    assert not any(map(is_archive, ["m.pth", "m.gz", "owner/name", "zip"]))


def test_default_cachedir_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cachedir() == tmp_path / "xdg" / "espnet2_merit" / "models"
    files = unpack_model(_zip(tmp_path / "m.zip"))
    assert Path(files["model_file"]).is_relative_to(tmp_path / "xdg")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cachedir() == tmp_path / "home" / ".cache/espnet2_merit/models"
