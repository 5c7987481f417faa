#!/usr/bin/env python3
"""Train a MERIT model (joint SE + SER) with ESPnet's trainer."""

from typing import Optional

from espnet2_merit.tasks.merit import MeritTask
from espnet2_merit.utils.cli import entry_point


def get_parser():
    return MeritTask.get_parser()


def main(cmd: Optional[list] = None):
    r"""MERIT training.

    Example:
        % python -m espnet2_merit.bin.merit_train --print_config --fusion sparse_moe
        % python -m espnet2_merit.bin.merit_train --config conf/sparse_merit.yaml \
            --train_data_path_and_name_and_type dump/train/wav.scp,speech,sound ...
    """
    with entry_point("merit_train", log_level=None):
        MeritTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
