#!/usr/bin/env python3
"""Recipe stage 10: score decoded sets, and collect the scores into RESULTS.md.

Score sets (every task of each decode dir that has references) against their
references:

    python -m espnet2_merit.bin.merit_score --ref_dir dump/raw/test1_seen_snr-5 \
        --hyp_dir exp/m/decode/test1_seen_snr-5 \
        --out_dir exp/m/decode/test1_seen_snr-5/score --nj 2

writes ``per_utt.tsv``, ``summary.json`` and ``confusion_<task>.png``
(``espnet2_merit.scoring.set_scoring``). Collect all scored sets of an experiment:

    python -m espnet2_merit.bin.merit_score --results exp/m

writes ``exp/m/RESULTS.md`` and ``exp/m/images/expert_usage_*.png``
(``espnet2_merit.scoring.results``) and prints the tables. Another corpus's test
sets (cross-corpus) are scored through label maps
(``espnet2_merit.scoring.cross_corpus``):

    python -m espnet2_merit.bin.merit_score \
        --ref_dir ../../crema_d/merit1/dump/raw/test_seen_snr5 \
        --hyp_dir exp/m/decode/cross_crema_d_test_seen_snr5 \
        --out_dir exp/m/decode/cross_crema_d_test_seen_snr5/score \
        --cross_label_map ../../crema_d/merit1/conf/label_map_shared4.txt \
        --cross_model_map conf/label_map_shared4.txt --cross_corpus crema_d
"""

import argparse
import logging
from pathlib import Path

from espnet2_merit.utils.cli import add_log_level, entry_point

logger = logging.getLogger("merit_score")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Score decoded sets (every task with references), or collect "
        "an experiment's scores into RESULTS.md (--results)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    # Repeatable, in step: one process scores every set of an experiment (a
    # process per set pays the imports again, seconds each).
    parser.add_argument(
        "--ref_dir",
        type=Path,
        action="append",
        help="Reference data dir (dump/raw/<set>); repeat with --hyp_dir and "
        "--out_dir to score several sets",
    )
    parser.add_argument(
        "--hyp_dir",
        type=Path,
        action="append",
        help="Decoded set (exp/<m>/decode/<set>)",
    )
    parser.add_argument(
        "--out_dir", type=Path, action="append", help="Where the scores go"
    )
    parser.add_argument("--nj", type=int, default=1, help="Processes for SE metrics")
    parser.add_argument(
        "--metrics",
        nargs="+",
        help="Registered metrics to compute; 'default' stands for every default "
        "one, e.g. --metrics default icbhi_se icbhi_sp icbhi_score (the ICBHI "
        "scores are off by default). Default: the default metrics",
    )
    parser.add_argument(
        "--submission",
        help="Challenge format (msp_podcast): write a submission file for every "
        "task of a set without references",
    )
    parser.add_argument(
        "--cross_label_map",
        type=Path,
        help="Cross-corpus sets: the test corpus's label map ('<class> <shared "
        "class>' lines); the emotion task is scored over the shared classes "
        "(espnet2_merit.scoring.cross_corpus)",
    )
    parser.add_argument(
        "--cross_model_map",
        type=Path,
        help="With --cross_label_map: the label map of the model's classes "
        "(default: the model's classes are the shared classes)",
    )
    parser.add_argument(
        "--cross_corpus", default="", help="With --cross_label_map: its corpus name"
    )
    parser.add_argument(
        "--force", action="store_true", help="Rescore even if the score is current"
    )
    parser.add_argument(
        "--results", type=Path, help="Experiment dir: write its RESULTS.md instead"
    )
    parser.add_argument(
        "--decode_dir", type=Path, help="With --results: default <exp>/decode"
    )
    parser.add_argument(
        "--results_note",
        type=Path,
        help="With --results: a markdown file shown under 'About these results' "
        "(a recipe's note on what its results can and cannot show)",
    )
    add_log_level(parser)
    return parser


def main(cmd=None):
    parser = get_parser()
    args = parser.parse_args(cmd)
    with entry_point("merit_score", args.log_level):
        from espnet2_merit.scoring.results import results_dir, write_results
        from espnet2_merit.scoring.set_scoring import one_line, score_set, up_to_date

        if args.results is not None:
            note = None
            if args.results_note is not None:
                if not args.results_note.is_file():
                    parser.error(f"--results_note: no such file {args.results_note}")
                note = args.results_note.read_text(encoding="utf-8")
            print(write_results(args.results, args.decode_dir, note))
            out = results_dir(args.results, args.decode_dir) / "RESULTS.md"
            logger.info(f"wrote {out}")
            return
        missing = [o for o in ("ref_dir", "hyp_dir", "out_dir") if not getattr(args, o)]
        if missing:
            parser.error(f"give --results, or all of --{', --'.join(missing)}")
        if not len(args.ref_dir) == len(args.hyp_dir) == len(args.out_dir):
            parser.error(
                f"--ref_dir, --hyp_dir and --out_dir go together: got "
                f"{len(args.ref_dir)}, {len(args.hyp_dir)} and {len(args.out_dir)}"
            )
        if args.nj < 1:
            parser.error("--nj must be >= 1")
        cross = None
        if args.cross_label_map is not None:
            from espnet2_merit.scoring.cross_corpus import CrossSpec, read_label_map

            model_map = args.cross_model_map
            cross = CrossSpec(
                read_label_map(args.cross_label_map),
                None if model_map is None else read_label_map(model_map),
                args.cross_corpus,
            )
        elif args.cross_model_map is not None or args.cross_corpus:
            parser.error("--cross_model_map and --cross_corpus need --cross_label_map")
        for ref_dir, hyp_dir, out_dir in zip(args.ref_dir, args.hyp_dir, args.out_dir):
            if not args.force and up_to_date(
                out_dir, args.metrics, args.submission, cross
            ):
                logger.info(f"{out_dir}: scores are up to date, skipped")
                continue
            summary = score_set(
                ref_dir, hyp_dir, out_dir, args.nj, args.metrics, args.submission,
                cross,
            )  # fmt: skip
            logger.info(f"{hyp_dir.name}: {one_line(summary)}")


if __name__ == "__main__":
    main()
