#!/usr/bin/env python3
"""Train a MERIT model (joint SE + SER) with ESPnet's trainer."""

import sys
from typing import Optional

from espnet2_merit.errors import MeritInputError
from espnet2_merit.tasks.merit import MeritTask


def get_parser():
    return MeritTask.get_parser()


def main(cmd: Optional[list] = None):
    r"""MERIT training.

    Example:
        % python -m espnet2_merit.bin.merit_train --print_config --fusion sparse_moe
        % python -m espnet2_merit.bin.merit_train --config conf/sparse_merit.yaml \
            --train_data_path_and_name_and_type dump/train/wav.scp,speech,sound ...
    """
    try:
        MeritTask.main(cmd=cmd)
    except MeritInputError as e:
        sys.exit(f"merit_train: error: {e}")


if __name__ == "__main__":
    main()
