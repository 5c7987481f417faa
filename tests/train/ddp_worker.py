"""One rank of ``merit_train`` started by torchrun in ``test_distributed.py``, with
two recorders: the utterance ids of every training batch (``batches.<rank>.<epoch>``)
and every file ``torch.save`` writes (``saves.<rank>``), both under ``$RECORD_DIR``.

Usage: torchrun --nproc_per_node 2 tests/train/ddp_worker.py <merit_train options>
"""

import os
import sys
from pathlib import Path

import torch

from espnet2_merit.bin.merit_train import main
from espnet2_merit.train.trainer import MeritTrainer

RECORD = Path(os.environ["RECORD_DIR"])
RANK = os.environ["RANK"]


def _recording_saves(save):
    def recorded(obj, f, *args, **kwargs):
        with open(RECORD / f"saves.{RANK}", "a") as log:
            log.write(f"{Path(f).name}\n")
        return save(obj, f, *args, **kwargs)

    return recorded


def _recording_batches(train_one_epoch):
    def recorded(cls, iterator, reporter, **kwargs):  # ESPnet passes keywords
        path = RECORD / f"batches.{RANK}.{reporter.get_epoch()}"

        def batches():
            with open(path, "w") as log:  # a resumed epoch starts again
                for ids, batch in iterator:
                    log.write(" ".join(ids) + "\n")
                    log.flush()
                    yield ids, batch

        return train_one_epoch(iterator=batches(), reporter=reporter, **kwargs)

    return classmethod(recorded)


if __name__ == "__main__":
    torch.save = _recording_saves(torch.save)
    MeritTrainer.train_one_epoch = _recording_batches(MeritTrainer.train_one_epoch)
    main(sys.argv[1:])
