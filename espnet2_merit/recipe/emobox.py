"""Recipe stage 1 from EmoBox's published folds: one fold of one corpus as the
Kaldi-style data directories train, dev and test.

    python -m espnet2_merit.bin.merit_emobox_data --emobox_dir EmoBox/data/iemocap \
        --fold 1 --corpus_dir /path/to/IEMOCAP_full_release --outdir data/fold1 \
        [--class_map ang=A,sad=S,hap=H,exc=H,neu=N] [--dev_by speaker|utterance] \
        [--dev_ratio 0.1 --seed 0 | --dev_list FILE] [--emobox_prefix downloads/iemocap]

Source of the format (read for its facts; no code taken): github.com/emo-box/EmoBox
at commit 08280f279d47fb55d2c614061c70523d0a338d6b -- README.md, EmoBox/EmoDataset.py,
EmoBox/utils/preprocess_utils.py (``write_jsonl``, ``write_mini_format``,
``write_folds``), EmoBox/preprocess/scripts/iemocap.py, and ``data/<corpus>/`` of
its 32 corpora (Ma et al., "EmoBox: Multilingual Multi-corpus Speech Emotion
Recognition Toolkit and Benchmark", Interspeech 2024).

``data/<corpus>/`` (the ``--emobox_dir``) holds

  fold_<n>/<corpus>_train_fold_<n>.jsonl   every corpus
  fold_<n>/<corpus>_test_fold_<n>.jsonl    every corpus
  fold_<n>/<corpus>_valid_fold_<n>.jsonl   m3ed, meld and msppodcast only: an
                                           official dev set (EmoDataset uses it)
  label_map.json     corpus code -> EmoBox's class name, e.g. IEMOCAP's
                     {"neu": "Neutral", "hap": "Happy", "ang": "Angry",
                     "sad": "Sad", "exc": "Happy"} (emovo's is empty)
  data.seg.wrd.stm   one line per utterance: "<key> <channel> <spk> <start> <end>
                     <id=<key>,lang=<l>,spk=<spk>,emotion=<code>> <code>"

(and files not read here: ``.json`` twins of the ``.jsonl`` files, ``<corpus>.jsonl``
of all utterances, ``corpus.cfg``, ``data.seg.audmap``, ``data.seg.wrd.freq``).
Folds: 1 for most corpora (cremad, msppodcast, ...), 3 cafe, 4 casia, jlcorpus,
savee, 5 emodb, esd, iemocap (fold k tests Session k), polish, subesco, 6 emovo,
ravdess. Each ``.jsonl`` line is one JSON object,

  {"key": "iemocap-Ses01F_impro04_F000", "dataset": "iemocap", "wav":
   "downloads/iemocap/Session1/sentences/wav/Ses01F_impro04/Ses01F_impro04_F000.wav",
   "type": "raw", "sample_rate": 16000, "num_frame": 70312.0, "task": "category",
   "length": 4.3945, "emo": "neu", "channel": 1}

``key`` is "<corpus>-<id>"; ``wav`` is relative to EmoBox's root, ``downloads/
<corpus>/`` followed by the path inside the corpus's release (the README: download
each corpus into ``downloads/``); ``emo`` is the corpus's own code (EmoBox merges
codes through label_map.json only when it reads them); ``type`` is always ``raw`` and
``task`` ``category``; pavoque's lines alone add ``start_time``/``end_time``
(segments of long recordings). Quirks of the published data: keys with spaces
(asvpesd, resd), wav paths with spaces (aesdd, jlcorpus), media other than audio
files (enterface and mer2023 ``.avi``, meld ``.mp4``, mead ``.m4a``, emns ``.webm``),
emodb's label_map.json says ``Neutral`` where its lines say ``neutral``, emodb's fold
folders also hold older ``emodb_<split>_fold<n>.jsonl`` files with other keys
(``audio``, ``label``), which are not read.

Read here: the fold's train and test files (and valid, if there), each line checked:
malformed JSON, a missing key, another ``dataset``, ``type`` other than raw, ``task``
other than category, segment lines (wav.scp lists whole files), a key twice in a file
or in two sets, a label code unknown to label_map.json and ``--class_map``, a wav
outside ``--emobox_prefix`` (default ``downloads/<corpus>``) or missing under
``--corpus_dir`` (which replaces the prefix) are errors naming the file and line
(EmoDataset drops missing files silently; a fold reproduced here is the published
one or nothing). Utterance ids are the EmoBox keys, white space (and ``/``) turned
into ``_`` since a Kaldi key holds none.

Labels (``--class_map``): without it each code is its own class (classes in
label_map.json order); ``emobox`` merges them as label_map.json does (classes its
names); ``code=class,...`` keeps the listed codes only, renamed (``code`` alone keeps
a code as it is), classes in their first-mention order: ``ang=A,sad=S,hap=H,exc=H,
neu=N`` is the IEMOCAP recipe's 4-class protocol. Codes left out are written to the
set's ``excluded`` file ("utt code") and counted.

Speakers: the ``spk`` of data.seg.wrd.stm (read from its ``<...>`` field, since
some speakers hold spaces), white space turned into ``_``. IEMOCAP's is the dialog
prefix (``Ses01F``, iemocap.py's ``uuid.split("_")[0]``: the actor who wore the
markers), which mixes both actors of a session; here it is the speaking actor, as
in local/iemocap_data.py (session + the turn's gender letter: ``Ses01F_impro01_M000``
-> ``Ses01M``). Utterances without a speaker (no stm file, or a key it lacks) are
their own speaker, with a warning. mer2023's stm gives each utterance its own.

Dev: the fold's official valid file where there is one; otherwise a seeded share of
the train split, by ``--dev_by``: ``speaker`` (default; no speaker in both train and
dev) or ``utterance``, ``round(N * --dev_ratio)`` (at least 1, at least 1 left) of
the N train speakers (utterances) drawn with ``--seed``, written to
``<outdir>/dev_list.txt`` (one id per line), which ``--dev_list`` reads back.
(EmoDataset's own random 80/20 split, ``split_sets``, returns the whole train set,
so there is no EmoBox dev set to reproduce.) ``<outdir>`` gets

  train/ dev/ test/  wav.scp   utt -> absolute audio path
                     utt2spk   utt -> speaker
                     emotion   utt -> class
                     excluded  "utt code" of each utterance whose code is not kept
  emotion_list       the classes, the classifier's output order
  dev_list.txt       the drawn dev speakers or utterances (no official valid)
  emobox_fold        one line: corpus, fold, where dev came from

No ``emotion_attr`` (EmoBox has categories only; merit.sh treats it as optional);
per-utterance files of an earlier preparation in the set folders (``emotion_attr``,
``utt2gender``, ...) are removed, as they would describe other utterances. Only the
existence of the audio is checked here; stage 3 reads it.
"""

import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import NO_TARGET
from espnet2_merit.recipe.dev_split import draw_dev, read_dev_list
from espnet2_merit.utils.datadir import (
    KEYED_TEXT_FILES,
    SOUND_SCPS,
    atomic_write_text,
    write_kaldi,
)

PROG = "merit_emobox_data"
SOURCE = "github.com/emo-box/EmoBox@08280f279d47fb55d2c614061c70523d0a338d6b"
SPLIT_FILES = ("train", "valid", "test")  # EmoBox's names, in reading order
SETS = ("train", "dev", "test")
REQUIRED_KEYS = ("key", "dataset", "wav", "type", "task", "emo")
SEGMENT_KEYS = ("start_time", "end_time")
LABEL_MAP_FILE = "label_map.json"
STM_FILE = "data.seg.wrd.stm"
DEV_LIST_FILE = "dev_list.txt"
FOLD_FILE = "emobox_fold"
# dev drawn from too few speakers: the hint in draw_dev's message
FEW = "train candidates (--dev_by utterance splits a corpus of few speakers)"
DEV_BY = ("speaker", "utterance")
OUR_FILES = ("wav.scp", "utt2spk", "emotion", "excluded")
# The <...> field of an stm line: the positional spk field cannot be used, as some
# keys and speakers hold spaces (jlcorpus's speakers are paths with spaces).
STM_META = re.compile(r"<id=(?P<id>.*?),lang=[^,]*,spk=(?P<spk>.*),emotion=[^>]*>")
IEMOCAP_KEY = re.compile(r"^iemocap-Ses0(?P<session>[1-5])[FM]_.+_(?P<gender>[FM])\d+$")
MAX_LISTED = 5
logger = logging.getLogger(PROG)


class Entry(NamedTuple):
    """One checked line of a fold file."""

    file: Path
    line: int
    key: str  # EmoBox's key
    utt: str  # the utterance id written (key without white space)
    code: str  # the corpus's label code
    wav: Path  # absolute, under --corpus_dir
    spk: Optional[str]  # None: unknown


def _listed(items: Sequence[str], sep: str = "; ") -> str:
    more = len(items) - MAX_LISTED
    return sep.join(items[:MAX_LISTED]) + (f" (and {more} more)" if more > 0 else "")


def _clean_id(text: str) -> str:
    """A Kaldi key or value token: no white space, no path separator."""
    return re.sub(r"\s+", "_", text.strip()).replace("/", "_")


def available_folds(emobox_dir: Path) -> List[int]:
    """The fold numbers of ``emobox_dir`` that have a train file."""
    folds = []
    for d in emobox_dir.glob("fold_*"):
        n = d.name[len("fold_") :]
        if n.isdigit() and any(d.glob(f"*_train_fold_{n}.jsonl")):
            folds.append(int(n))
    return sorted(folds)


def fold_files(emobox_dir: Path, fold: int) -> Tuple[str, Dict[str, Path]]:
    """(corpus name, EmoBox split -> file) of one fold; valid only if published."""
    if not emobox_dir.is_dir():
        raise MeritInputError(f"--emobox_dir {emobox_dir}: no such directory")
    fold_dir = emobox_dir / f"fold_{fold}"
    trains = sorted(fold_dir.glob(f"*_train_fold_{fold}.jsonl"))
    if not trains:
        folds = available_folds(emobox_dir)
        raise MeritInputError(
            f"--emobox_dir {emobox_dir}: fold {fold} has no files (no fold_{fold}/"
            f"<corpus>_train_fold_{fold}.jsonl); its folds: "
            + (" ".join(map(str, folds)) or "none")
        )
    if len(trains) > 1:
        raise MeritInputError(
            f"{fold_dir}: train files of several corpora: "
            + ", ".join(p.name for p in trains)
        )
    corpus = trains[0].name[: -len(f"_train_fold_{fold}.jsonl")]
    files = {s: fold_dir / f"{corpus}_{s}_fold_{fold}.jsonl" for s in SPLIT_FILES}
    if not files["test"].is_file():
        raise MeritInputError(f"{files['test']}: no such file (fold {fold}'s test)")
    if not files["valid"].is_file():
        del files["valid"]
    return corpus, files


def read_label_map(emobox_dir: Path) -> Dict[str, str]:
    """label_map.json (code -> EmoBox class), {} when absent or empty."""
    path = emobox_dir / LABEL_MAP_FILE
    if not path.is_file() or not path.read_text(encoding="utf-8").strip():
        logger.warning(f"{path}: missing or empty, so every label code is accepted")
        return {}
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise MeritInputError(f"{path}:{e.lineno}: malformed JSON: {e.msg}") from None
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in table.items()
    ):
        raise MeritInputError(f"{path}: expected an object of code: class strings")
    return table


def parse_class_map(
    spec: Optional[str], label_map: Dict[str, str]
) -> Optional[Dict[str, str]]:
    """code -> class of ``--class_map`` (see the module docstring); None: every
    code is its own class."""
    if spec is None or not spec.strip():
        return None
    if spec.strip() == "emobox":
        if not label_map:
            raise MeritInputError(
                f"--class_map emobox: the corpus has no (or an empty) {LABEL_MAP_FILE}"
            )
        table = {c: _clean_id(name) for c, name in label_map.items()}
    else:
        table = {}
        for item in spec.split(","):
            code, _, name = item.strip().partition("=")
            code, name = code.strip(), (name.strip() if _ else code.strip())
            if not code or not name or len(name.split()) != 1:
                raise MeritInputError(
                    f"--class_map: {item.strip()!r} is not 'code=class' or 'code' "
                    "(classes without spaces)"
                )
            if code in table:
                raise MeritInputError(f"--class_map: code {code!r} given twice")
            table[code] = name
    if NO_TARGET in table.values():
        raise MeritInputError(
            f"--class_map: '{NO_TARGET}' cannot be a class (it marks an utterance "
            "without a label)"
        )
    return table


def read_stm_speakers(emobox_dir: Path) -> Dict[str, str]:
    """EmoBox key -> speaker of data.seg.wrd.stm ({} without the file)."""
    path = emobox_dir / STM_FILE
    if not path.is_file():
        return {}
    speakers: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for num, text in enumerate(f, 1):
            if not text.strip():
                continue
            m = STM_META.search(text)
            if m is None:
                raise MeritInputError(
                    f"{path}:{num}: no '<id=...,lang=...,spk=...,emotion=...>' field"
                )
            speakers[m["id"]] = _clean_id(m["spk"])
    return speakers


def _iemocap_actor(key: str) -> Optional[str]:
    m = IEMOCAP_KEY.match(key)
    return f"Ses0{m['session']}{m['gender']}" if m else None


# Corpora whose stm speaker is not the speaking person: key -> speaker (None: use
# the stm's).
SPEAKER_RULES = {"iemocap": _iemocap_actor}


def _get(obj: dict, name: str, path: Path, num: int) -> str:
    value = obj[name]
    if not isinstance(value, str) or not value.strip():
        raise MeritInputError(
            f"{path}:{num}: '{name}' is {value!r}, expected a non-empty string"
        )
    return value


def read_fold_file(
    path: Path,
    corpus: str,
    prefix: str,
    corpus_dir: Path,
    known_codes: Optional[set],
    speakers: Dict[str, str],
) -> List[Entry]:
    """The checked lines of one fold file (see the module docstring)."""
    entries: List[Entry] = []
    seen: Dict[str, int] = {}
    rule = SPEAKER_RULES.get(corpus)
    with open(path, encoding="utf-8") as f:
        for num, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise MeritInputError(
                    f"{path}:{num}: malformed JSON line ({e.msg}, column {e.colno}): "
                    f"{text.strip()[:80]!r}"
                ) from None
            if not isinstance(obj, dict):
                raise MeritInputError(f"{path}:{num}: expected a JSON object")
            missing = [k for k in REQUIRED_KEYS if k not in obj]
            if missing:
                raise MeritInputError(
                    f"{path}:{num}: no {', '.join(repr(k) for k in missing)} key "
                    f"(EmoBox lines have {', '.join(REQUIRED_KEYS)}, ...)"
                )
            key, wav, code = (_get(obj, k, path, num) for k in ("key", "wav", "emo"))
            checks = (("dataset", corpus), ("type", "raw"), ("task", "category"))
            for name, expected in checks:
                if obj[name] != expected:
                    raise MeritInputError(
                        f"{path}:{num}: {name} {obj[name]!r}, expected {expected!r}"
                    )
            if any(k in obj for k in SEGMENT_KEYS):
                raise MeritInputError(
                    f"{path}:{num}: {key} is a segment (start_time/end_time) of "
                    f"{wav}; wav.scp lists whole files, so segmented corpora are "
                    "not supported"
                )
            if key in seen:
                raise MeritInputError(
                    f"{path}:{num}: key {key} repeats line {seen[key]}"
                )
            seen[key] = num
            if known_codes is not None and code not in known_codes:
                raise MeritInputError(
                    f"{path}:{num}: unknown label {code!r} of {key} (known: "
                    f"{' '.join(sorted(known_codes))}; --class_map can add it)"
                )
            if not wav.startswith(prefix + "/"):
                raise MeritInputError(
                    f"{path}:{num}: wav {wav!r} is not under {prefix + '/'!r} "
                    "(--emobox_prefix)"
                )
            spk = rule(key) if rule else None
            entries.append(
                Entry(
                    file=path,
                    line=num,
                    key=key,
                    utt=_clean_id(key),
                    code=code,
                    wav=corpus_dir / wav[len(prefix) + 1 :],
                    spk=spk or speakers.get(key),
                )
            )
    if not entries:
        raise MeritInputError(f"{path}: no lines")
    return entries


def check_disjoint(splits: Dict[str, List[Entry]]) -> None:
    """No key (nor utterance id) in two lines of different sets or files."""
    by_key: Dict[str, Entry] = {}
    by_utt: Dict[str, Entry] = {}
    for entries in splits.values():
        for e in entries:
            first = by_key.get(e.key)
            if first is not None and first.file != e.file:
                raise MeritInputError(
                    f"{e.file}:{e.line}: utterance {e.key} is also in "
                    f"{first.file}:{first.line} (in two sets)"
                )
            first = by_utt.get(e.utt)
            if first is not None and first.key != e.key:
                raise MeritInputError(
                    f"{e.file}:{e.line}: keys {e.key!r} and {first.key!r} "
                    f"({first.file}:{first.line}) both become utterance id {e.utt}"
                )
            by_key[e.key] = e
            by_utt[e.utt] = e


def check_audio(splits: Dict[str, List[Entry]]) -> None:
    """Every listed file exists (the error names the first few lines without)."""
    entries = [e for es in splits.values() for e in es]
    missing = [e for e in entries if not e.wav.is_file()]
    if missing:
        places = [f"{e.file}:{e.line}: {e.key}: no file {e.wav}" for e in missing]
        raise MeritInputError(
            f"{len(missing)} of {len(entries)} utterances have no audio under "
            f"--corpus_dir: {_listed(places)}"
        )


def _classes(
    class_map: Optional[Dict[str, str]], label_map: Dict[str, str], codes: set
) -> List[str]:
    """The output order of the classes (see the module docstring)."""
    if class_map is not None:
        return list(dict.fromkeys(class_map.values()))
    ordered = [c for c in label_map if c in codes]
    return ordered + sorted(codes - set(ordered))


def prepare(
    emobox_dir: Path,
    fold: int,
    corpus_dir: Path,
    outdir: Path,
    class_map: Optional[str] = None,
    dev_by: str = "speaker",
    dev_ratio: float = 0.1,
    seed: int = 0,
    dev_list: Optional[Path] = None,
    emobox_prefix: Optional[str] = None,
) -> Dict[str, Dict[str, int]]:
    """Write ``<outdir>/{train,dev,test}``, ``emotion_list``, ``emobox_fold`` (and
    ``dev_list.txt``) of one EmoBox fold.

    Returns:
        Set -> {"speakers": n, class: count, "excluded:<code>": count}.
    """
    if dev_by not in DEV_BY:
        raise MeritInputError(f"--dev_by {dev_by!r}: expected one of {DEV_BY}")
    if not corpus_dir.is_dir():
        raise MeritInputError(f"--corpus_dir {corpus_dir}: no such directory")
    corpus, files = fold_files(emobox_dir, fold)
    label_map = read_label_map(emobox_dir)
    mapping = parse_class_map(class_map, label_map)
    # Without a label map every code is accepted (emovo); with one, a code in
    # neither it nor --class_map is a typo or a corrupted line.
    known = set(label_map) | set(mapping or ()) if label_map else None
    prefix = (emobox_prefix or f"downloads/{corpus}").rstrip("/")
    speakers = read_stm_speakers(emobox_dir)
    corpus_dir = corpus_dir.resolve()
    splits = {
        s: read_fold_file(p, corpus, prefix, corpus_dir, known, speakers)
        for s, p in files.items()
    }
    check_disjoint(splits)
    check_audio(splits)
    unknown_spk = [e for es in splits.values() for e in es if e.spk is None]
    if unknown_spk:
        logger.warning(
            f"{len(unknown_spk)} utterances have no speaker in {emobox_dir / STM_FILE}"
            f" (each is its own speaker in utt2spk): "
            + _listed([e.key for e in unknown_spk], ", ")
        )
    speaker = {e.utt: e.spk or e.utt for es in splits.values() for e in es}

    sets = {"test": splits["test"]}
    if "valid" in splits:
        how = f"valid ({files['valid'].name})"
        sets.update(train=splits["train"], dev=splits["valid"])
        if dev_list is not None:
            logger.info(f"--dev_list {dev_list} unused: the fold has an official dev")
        (outdir / DEV_LIST_FILE).unlink(missing_ok=True)
    else:
        train = splits["train"]
        unit = (lambda e: speaker[e.utt]) if dev_by == "speaker" else (lambda e: e.utt)
        candidates = sorted({unit(e) for e in train})
        if dev_list is not None:
            chosen = set(
                read_dev_list(dev_list, candidates, pool="the fold's train split")
            )
            how = f"{dev_by} list {dev_list}"
        else:
            chosen = set(draw_dev(candidates, dev_ratio, seed, what=FEW))
            how = f"{dev_by} ratio={dev_ratio} seed={seed}"
        sets["train"] = [e for e in train if unit(e) not in chosen]
        sets["dev"] = [e for e in train if unit(e) in chosen]
        atomic_write_text(
            outdir / DEV_LIST_FILE, "".join(f"{x}\n" for x in sorted(chosen))
        )

    codes = {e.code for es in sets.values() for e in es}
    if mapping is not None:
        unused = [c for c in mapping if c not in codes]
        if unused:
            logger.warning(
                f"--class_map: codes {' '.join(unused)} occur in no line of fold {fold}"
            )
    classes = _classes(mapping, label_map, codes)
    summary: Dict[str, Dict[str, int]] = {}
    stale = [f for f in (*SOUND_SCPS, *KEYED_TEXT_FILES) if f not in OUR_FILES]
    for name in SETS:
        entries = sets[name]
        kept = [e for e in entries if mapping is None or e.code in mapping]
        dropped = [e for e in entries if mapping is not None and e.code not in mapping]
        if not kept:
            raise MeritInputError(
                f"{emobox_dir}: fold {fold}: {name} has no utterance of the classes "
                f"{' '.join(classes)}"
            )
        label = {e.utt: (mapping[e.code] if mapping else e.code) for e in kept}
        d = outdir / name
        write_kaldi(d / "wav.scp", {e.utt: str(e.wav) for e in kept})
        write_kaldi(d / "utt2spk", {e.utt: speaker[e.utt] for e in kept})
        write_kaldi(d / "emotion", label)
        write_kaldi(d / "excluded", {e.utt: e.code for e in dropped})
        for f in stale:  # an earlier preparation's, of other utterances
            (d / f).unlink(missing_ok=True)
        counts = {"speakers": len({speaker[e.utt] for e in kept})}
        counted = Counter(label.values())
        counts.update({c: counted.get(c, 0) for c in classes})
        counts.update(
            {
                f"excluded:{c}": n
                for c, n in sorted(Counter(e.code for e in dropped).items())
            }
        )
        summary[name] = counts
    atomic_write_text(outdir / "emotion_list", "\n".join(classes) + "\n")
    atomic_write_text(
        outdir / FOLD_FILE,
        f"source={SOURCE} corpus={corpus} fold={fold} dev={how}\n",
    )
    logger.info(f"{corpus} fold {fold} of {emobox_dir}: dev from {how}")
    return summary


def format_summary(summary: Dict[str, Dict[str, int]]) -> str:
    """A text table: set x speakers, class counts, excluded, total kept."""
    classes = [
        c for c in next(iter(summary.values())) if c != "speakers" and ":" not in c
    ]
    cols = ["speakers", *classes, "excluded", "total"]
    width = max(9, *(len(c) + 2 for c in cols))
    lines = [f"{'set':<8}" + "".join(f"{c:>{width}}" for c in cols)]
    for name, counts in summary.items():
        excluded = sum(n for k, n in counts.items() if k.startswith("excluded:"))
        kept = [counts[c] for c in classes]
        cells = [counts["speakers"], *kept, excluded, sum(kept)]
        lines.append(f"{name:<8}" + "".join(f"{x:>{width}}" for x in cells))
    return "\n".join(lines)
