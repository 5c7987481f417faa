"""The mini recipe's generated room impulse responses (its local/make_mini_rir.py):
room types held out as unseen, determinism, and what the RIRs look like."""

import re

import numpy as np
import pytest
import soundfile
from merit_testing import REPO, load_local

pytest.importorskip("pyroomacoustics")
rir = load_local("make_mini_rir")
DB_SH = REPO / "egs2" / "mini_msp_podcast" / "merit1" / "db.sh"


def test_db_sh_holds_the_unseen_room_type_out_of_training():
    text = DB_SH.read_text()

    def types(var):
        value = re.search(rf'^{var}="([^"]*)"', text, re.M)[1]
        return {d.rsplit("/", 1)[1] for d in value.split()}

    seen, unseen = types("RIR_SEEN_DIRS"), types("RIR_UNSEEN_DIRS")
    assert unseen == {rir.UNSEEN_TYPE} and not seen & unseen
    assert seen | unseen == set(rir.ROOM_TYPES)


def test_rirs_are_deterministic_and_start_with_the_direct_path(tmp_path):
    files = rir.generate(tmp_path / "a", num_per_type=2, types="office,corridor")
    again = rir.generate(tmp_path / "b", num_per_type=2, types="office,corridor")
    other = rir.generate(tmp_path / "c", num_per_type=2, types="office", seed=1)
    # same samples (not bytes: a float wav's header holds the time it was written)
    for kind, paths in files.items():
        for path, twin in zip(paths, again[kind]):
            np.testing.assert_array_equal(
                soundfile.read(path)[0], soundfile.read(twin)[0]
            )
    first, reseeded = (soundfile.read(f["office"][0])[0] for f in (files, other))
    assert first.shape != reseeded.shape or np.any(first != reseeded)
    rooms = (tmp_path / "a" / "rooms.tsv").read_text().splitlines()
    assert len(rooms) == 1 + 4 and rooms[1].startswith("office_000\toffice\t")
    for i, path in enumerate(files["office"]):
        h, fs = soundfile.read(path)
        assert fs == rir.FS and h.ndim == 1 and len(h) <= rir.MAX_SECONDS * fs
        assert np.abs(h).max() == pytest.approx(1.0)
        room = rir.draw_room("office", i, 0)
        dist = np.linalg.norm(np.subtract(room["source"], room["mic"]))
        # the largest sample is the direct path: at the distance's delay
        # (pyroomacoustics' fractional-delay filter adds 40 samples)
        delay = int(np.argmax(np.abs(h))) - 40
        assert abs(delay - dist / 343 * fs) < 3
        assert rir.ROOM_TYPES["office"][1][0] <= room["rt60"]
        assert room["rt60"] <= rir.ROOM_TYPES["office"][1][1]
    # a re-run with the same options skips (files untouched)
    stamp = (tmp_path / "a" / "office" / "office_000.wav").stat().st_mtime_ns
    rir.generate(tmp_path / "a", num_per_type=2, types="office,corridor")
    assert (tmp_path / "a" / "office" / "office_000.wav").stat().st_mtime_ns == stamp
