"""MeritTask: ESPnet's task for joint speech enhancement and emotion recognition
(and any other tasks on the same fused SSL features): its options, data, data
checks, optimiser and trainer. Models are built by ``espnet2_merit.tasks.builder``
(``MeritTask.build_model`` and ``build_model_from_file`` are that module's).
"""

import argparse
import copy
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from espnet2.iterators.abs_iter_factory import AbsIterFactory
from espnet2.tasks.abs_task import AbsTask, IteratorOptions, optim_classes
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.train.distributed_utils import DistributedOption
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import float_or_none, str2bool, str_or_none
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.espnet_model import ESPnetMeritModel
from espnet2_merit.merit.heads.targets import AUG_LABEL, GENERATED
from espnet2_merit.simulation.augmentation import OPTION as AUG_OPTION
from espnet2_merit.simulation.augmentation import build_augmenter
from espnet2_merit.simulation.dynamic_mixing import OPTION as DM_OPTION
from espnet2_merit.simulation.dynamic_mixing import build_mixer
from espnet2_merit.tasks import builder
from espnet2_merit.tasks.builder import (
    DEFAULT_TASKS,
    class_list,
    frontend_choices,
    fusion_choices,
    model_choices,
    normalize_choices,
    task_record,
    task_specs,
    text_class,
    text_frontend_choices,
)
from espnet2_merit.train.balanced_batches import MODES as BALANCE_MODES
from espnet2_merit.train.balanced_batches import ClassBalancedBatches
from espnet2_merit.train.data_check import check_data
from espnet2_merit.train.epoch_iter_factory import EpochIterFactory
from espnet2_merit.train.preprocessor import CROPS, MeritPreprocessor
from espnet2_merit.train.reshuffled_iter_factory import ReshuffledIterFactory
from espnet2_merit.train.trainer import MeritTrainer
from espnet2_merit.utils.checkpoint import check_checkpoint, force_weights_only
from espnet2_merit.utils.datadir import DATA_FILES, read_kaldi
from espnet2_merit.utils.packing import FILE_ENTRIES


def merge_repeated(cmd: List[str], option: str) -> List[str]:
    """Join the values of every ``option`` (an ``nargs="*"`` option of ESPnet's,
    such as ``--init_param``) into its first occurrence: argparse keeps only the
    last one, so ``--init_param a.pth:frontend:frontend --init_param
    b.pth:text_frontend:text_frontend`` would load ``b`` alone.

    Args:
        cmd: Command-line words.
        option: The option (``--name``; ``--name=value`` is read too).

    Returns:
        ``cmd`` with one ``option`` holding all the values, where the first was.
    """
    out: List[str] = []
    values: List[str] = []
    first = None
    i = 0
    while i < len(cmd):
        word = cmd[i]
        if word == option or word.startswith(option + "="):
            if first is None:
                first = len(out)
                out.append(option)
            if word != option:
                values.append(word.split("=", 1)[1])
            i += 1
            while i < len(cmd) and not cmd[i].startswith("-"):
                values.append(cmd[i])
                i += 1
            continue
        out.append(word)
        i += 1
    if first is not None:
        out[first + 1 : first + 1] = values
    return out


class MeritTask(AbsTask):
    """Noisy ``speech`` and, per task, its target (``speech_ref1``, ``emotion``,
    ``emotion_attr``, ...)."""

    num_optimizers: int = 1
    class_choices_list = [
        frontend_choices,
        text_frontend_choices,
        normalize_choices,
        fusion_choices,
        model_choices,
    ]
    trainer = MeritTrainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="Task related")
        group.add_argument(
            "--fs", type=int, default=16000, help="Sampling rate of all audio"
        )
        group.add_argument(
            "--tasks",
            action=NestedDictAction,
            default=DEFAULT_TASKS,
            help="Task name -> {head, head_conf, loss, loss_conf, weight}; "
            "e.g. --tasks ser.loss=focal, --tasks se=null",
        )
        group.add_argument(
            "--emotion_list",
            type=str_or_none,
            default=None,
            help="Classes of the 'emotion' data in output order: a file with one "
            "per line, or a list in the config",
        )
        group.add_argument(
            "--attribute_list",
            default=["arousal", "valence", "dominance"],
            help="Names of the emotion_attr columns (attribute regressor)",
        )
        group.add_argument(
            "--max_speech_sec",
            type=float_or_none,
            default=None,
            help="Crop longer training utterances to this length (see --crop, "
            "--crop_valid; inference scores whole utterances)",
        )
        group.add_argument(
            "--crop",
            type=str,
            default="random",
            choices=CROPS,
            help="Which max_speech_sec window: random (a random offset) or first "
            "(the first max_speech_sec seconds, as the authors' release crops)",
        )
        group.add_argument(
            "--crop_valid",
            type=str2bool,
            default=False,
            help="Crop validation utterances to max_speech_sec too (the release "
            "does)",
        )
        group.add_argument(
            "--reshuffle_batches",
            type=str2bool,
            default=False,
            help="false: ESPnet's training batches (the sampler's, fixed for the "
            "run, their order shuffled each epoch); true: every epoch all "
            "utterances are permuted (seed, epoch) and cut into the sampler's "
            "batch sizes, as the release's DataLoader(shuffle=True) draws them",
        )
        group.add_argument(
            "--balanced_batches",
            choices=BALANCE_MODES,
            default="none",
            help="Class-balanced training batches (needs reshuffle_batches: true): "
            "up: every class drawn to the largest's count each epoch, down: to "
            "the smallest's (espnet2_merit/train/balanced_batches.py)",
        )
        group.add_argument(
            "--balanced_batches_target",
            default="emotion",
            help="The data name whose classes --balanced_batches equalises",
        )
        group.add_argument(
            "--dynamic_mixing",
            action=NestedDictAction,
            default=None,
            help="Mix noise (and RIRs) into the clean training speech in the data "
            "loader, per (seed, epoch, utterance): {noise_scp, snr_range: [lo, hi], "
            "rir_scp, rir_prob, rir_reference: dry|early, early_ms, seed (default "
            "--seed), cache_mb}; the training 'speech' is then the clean speech "
            "(spk1.scp). Dev data is read as it is (README: Dynamic mixing)",
        )
        group.add_argument(
            "--augmentation",
            action=NestedDictAction,
            default=None,
            help="On-the-fly augmentation of training utterances, one type per "
            "(seed, epoch, utterance), its type the aug_type label and the input "
            "before it speech_unaugmented (MTL-AUG): {types: [none, noise, reverb, "
            "speed, pitch, mask], noise_scp, snr_range, rir_scp, speed_factors, "
            "pitch_semitones, time_mask, freq_mask, seed} "
            "(espnet2_merit.simulation.augmentation; README: MTL-AUG)",
        )
        group.add_argument(
            "--frontend_unfreeze",
            action=NestedDictAction,
            default=None,
            help="Cascade unfreezing of the SSL encoder, top layers first: "
            "{unit: epoch|step, schedule: [[point, layers or all], ...]} or "
            "{unit, start, every, layers} (espnet2_merit.train.unfreeze; README: "
            "Cascade unfreezing)",
        )
        group.add_argument(
            "--frontend_lr_scale",
            type=float,
            default=1.0,
            help="Learning rate of the frontend (SSL) parameters relative to optim_conf.lr",
        )
        group.add_argument(
            "--check_data",
            type=str2bool,
            default=True,
            help="Check data lists, labels and sampling rates before training",
        )
        group.add_argument(
            "--deterministic",
            type=str2bool,
            default=False,
            help="torch.use_deterministic_algorithms(True): an op without a "
            "deterministic implementation is an error (on GPU; CPU ops are "
            "deterministic for a given thread count, OMP_NUM_THREADS)",
        )
        group.add_argument(
            "--model_conf",
            action=NestedDictAction,
            default=dict(),
            help="Keyword arguments of the model (auxiliary loss weights)",
        )
        for class_choices in cls.class_choices_list:
            if class_choices.name != "model":
                class_choices.add_arguments(group)
        group.add_argument("--model", default="merit", choices=model_choices.choices())

    @classmethod
    def get_default_config(cls) -> Dict[str, Any]:
        """``--print_config``: ESPnet's, with every task's options spelled out."""
        config = super().get_default_config()
        args = argparse.Namespace(**config)
        args.emotion_list = class_list(args.emotion_list, "--emotion_list") or [
            "<class 1>", "<class 2>",
        ]  # fmt: skip
        config["tasks"] = {n: task_record(s) for n, s in task_specs(args).items()}
        return config

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable:
        return CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Callable:
        args.emotion_list = class_list(args.emotion_list, "--emotion_list")
        specs = [] if args.collect_stats else task_specs(args).values()
        targets = [t for s in specs for t in s.targets]
        text = None if args.collect_stats else text_class(args)
        return MeritPreprocessor(
            train=train,
            targets=targets,
            fs=args.fs,
            max_speech_sec=args.max_speech_sec,
            crop=args.crop,
            # --collect_stats reads train and valid as validation data: whole.
            crop_valid=args.crop_valid and not args.collect_stats,
            text_tokenizer=(
                None
                if text is None
                else text.build_tokenizer(**(args.text_frontend_conf or {}))
            ),
            mixer=(
                build_mixer(args.dynamic_mixing, args.fs, args.seed)
                if train and dynamic_mixing(args)
                else None
            ),
            augmenter=(
                build_augmenter(args.augmentation, args.fs, args.seed)
                if augmentation(args)
                else None
            ),
        )

    @classmethod
    def build_iter_factory(
        cls,
        args: argparse.Namespace,
        distributed_option: DistributedOption,
        mode: str,
        kwargs: Optional[dict] = None,
    ) -> AbsIterFactory:
        """ESPnet's; with ``--dynamic_mixing`` or ``--augmentation`` the training
        factory is wrapped in an ``EpochIterFactory`` that tells the preprocessor
        each epoch."""
        factory = super().build_iter_factory(args, distributed_option, mode, kwargs)
        if mode != "train" or not (dynamic_mixing(args) or augmentation(args)):
            return factory
        preprocess = getattr(getattr(factory, "dataset", None), "preprocess", None)
        if not callable(getattr(preprocess, "set_epoch", None)):
            option = DM_OPTION if dynamic_mixing(args) else AUG_OPTION
            raise MeritInputError(
                f"{option}: iterator_type {args.iterator_type!r} gives no dataset "
                "whose preprocessor can be told the epoch; use sequence or category"
            )
        return EpochIterFactory(factory, [preprocess])

    @classmethod
    @typechecked
    def build_sequence_iter_factory(
        cls, args: argparse.Namespace, iter_options: IteratorOptions, mode: str
    ) -> AbsIterFactory:
        """ESPnet's; with ``--reshuffle_batches true`` the training iterator is a
        ``ReshuffledIterFactory`` over ESPnet's batches before sharding (each
        rank takes its slice of every batch, every epoch)."""
        if not (args.reshuffle_batches and iter_options.train):
            return super().build_sequence_iter_factory(args, iter_options, mode)
        parent = Path(iter_options.data_path_and_name_and_type[0][0]).parent
        if (parent / "utt2category").exists():
            raise MeritInputError(
                f"reshuffle_batches: true would mix the categories of "
                f"{parent / 'utt2category'} in a batch; set it to false"
            )
        rank, world_size = 0, 1
        whole = args
        if iter_options.distributed:
            rank = torch.distributed.get_rank()
            world_size = torch.distributed.get_world_size()
            whole = copy.copy(args)  # the sampler's minimum, as ESPnet's sharding
            whole.min_batch_size = world_size
        base = super().build_sequence_iter_factory(
            whole, dataclasses.replace(iter_options, distributed=False), mode
        )
        batches = list(base.sampler)
        sampler = None
        if args.balanced_batches != "none":
            path = _data_file(iter_options, args.balanced_batches_target)
            sampler = ClassBalancedBatches(
                batches,
                {k: v.strip() for k, v in read_kaldi(path).items()},
                args.balanced_batches,
                base.seed,
                rank,
                world_size,
                source=str(path),
            )
        return ReshuffledIterFactory(
            dataset=base.dataset,
            batches=batches,
            sampler=sampler,
            seed=base.seed,
            rank=rank,
            world_size=world_size,
            num_iters_per_epoch=base.num_iters_per_epoch,
            shuffle=base.shuffle,
            shuffle_within_batch=base.shuffle_within_batch,
            num_workers=base.num_workers,
            collate_fn=base.collate_fn,
            pin_memory=base.pin_memory,
        )

    @classmethod
    def required_data_names(
        cls, train: bool = True, inference: bool = False
    ) -> Tuple[str, ...]:
        return ("speech",)

    @classmethod
    def optional_data_names(
        cls, train: bool = True, inference: bool = False
    ) -> Tuple[str, ...]:
        # Which of these a config needs depends on its tasks: checked in main_worker.
        return tuple(n for n in DATA_FILES if n != "speech")

    @classmethod
    def main(cls, args: Optional[argparse.Namespace] = None, cmd=None):
        force_weights_only()  # before anything loads a checkpoint
        if args is None:
            cmd = merge_repeated(sys.argv[1:] if cmd is None else cmd, "--init_param")
            args = cls.get_parser().parse_args(cmd)
        check_distributed(args)
        super().main(args=args, cmd=cmd)

    @classmethod
    def main_worker(cls, args: argparse.Namespace):
        force_weights_only()  # spawned workers too
        if args.deterministic:
            # cuBLAS needs a fixed workspace, set before its first call.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        check_pipeline(args)
        drop_unread_text(args)
        args.emotion_list = class_list(args.emotion_list, "--emotion_list")
        # config.yaml must rebuild the model from any directory: the files it
        # names are recorded with absolute paths.
        for section, key in FILE_ENTRIES:
            value = (getattr(args, section, None) or {}).get(key)
            if isinstance(value, str) and Path(value).exists():
                getattr(args, section)[key] = str(Path(value).resolve())
        # ESPnet loads these itself (where a refused pickle is a traceback): check
        # them first, tensors mapped, not read.
        for init in args.init_param or []:
            path, part = (init.split(":") + [""])[:2]
            check_checkpoint(path, "--init_param", part or None)
        generated = ()
        # config.yaml names the pools with absolute paths.
        for section in (args.dynamic_mixing, args.augmentation):
            for key in ("noise_scp", "rir_scp"):
                if isinstance((section or {}).get(key), str):
                    section[key] = str(Path(section[key]).resolve())
        if dynamic_mixing(args):
            # The mixer makes the training SE reference from the clean speech.
            generated = tuple(
                spec.target.name
                for spec in task_specs(args).values()
                if spec.target.kind == "waveform"
            )
        if args.check_data and not args.dry_run:
            check_data(
                args,
                cls.needed_data(args),
                train_generated=generated,
                generated=GENERATED if augmentation(args) else (),
            )
        super().main_worker(args)

    @classmethod
    def needed_data(cls, args: argparse.Namespace) -> Dict[str, Any]:
        """Data name -> (why this config needs it, its Target or None)."""
        needed: Dict[str, Any] = {"speech": ("the model needs noisy speech", None)}
        if not args.collect_stats and text_class(args) is not None:
            needed["text"] = ("the text_frontend reads the transcripts", None)
        if not args.collect_stats:
            for name, spec in task_specs(args).items():
                why = f"task '{name}' ({spec.head}) trains on it"
                for target in spec.targets:
                    needed[target.name] = (why, target)
        return needed

    @classmethod
    def build_optimizers(
        cls, args: argparse.Namespace, model: torch.nn.Module
    ) -> List[torch.optim.Optimizer]:
        """AdamW etc. with the frontend's learning rate scaled by frontend_lr_scale
        (the paper fine-tunes WavLM at half the learning rate)."""
        if args.frontend_lr_scale == 1.0:
            return super().build_optimizers(args, model)
        optim_class = optim_classes.get(args.optim)
        if optim_class is None:
            raise MeritInputError(f"optim must be one of {list(optim_classes)}")
        lr = args.optim_conf.get("lr", 1e-3)
        frontend, rest = [], []
        for name, p in model.named_parameters():
            (frontend if name.startswith("frontend.") else rest).append(p)
        groups = [
            {"params": rest},
            {"params": frontend, "lr": lr * args.frontend_lr_scale},
        ]
        return [optim_class(groups, **args.optim_conf)]

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> ESPnetMeritModel:
        return builder.build_model(args)

    @classmethod
    def build_model_from_file(
        cls,
        config_file: Union[Path, str, None] = None,
        model_file: Union[Path, str, None] = None,
        device: str = "cpu",
        allow_random_init: bool = False,
    ) -> Tuple[ESPnetMeritModel, argparse.Namespace]:
        return builder.build_model_from_file(
            config_file, model_file, device, allow_random_init
        )


logger = logging.getLogger(__name__)

TORCHRUN = "torchrun --nproc_per_node N -m espnet2_merit.bin.merit_train --ngpu 0 ..."


def _data_file(iter_options: IteratorOptions, name: str) -> Path:
    """The training data file of data name ``name``."""
    for path, data_name, _ in iter_options.data_path_and_name_and_type:
        if data_name == name:
            return Path(path)
    names = [n for _, n, _ in iter_options.data_path_and_name_and_type]
    raise MeritInputError(
        f"balanced_batches_target={name!r}: the training data has no such name "
        f"(it has {names})"
    )


def check_distributed(args: argparse.Namespace) -> None:
    """CPU data parallelism the way ESPnet can run it.

    ESPnet's ``--multiprocessing_distributed`` spawns one process per GPU, so
    with ``--ngpu 0`` it spawns none and reads ``--dist_world_size`` as a number
    of *nodes* (its error then asks for ``--dist_rank``). On CPU the processes
    come from an external launcher (torchrun, or srun with ``--dist_launcher
    slurm``), and the backend must be gloo: NCCL, ESPnet's default, needs GPUs.
    """
    if args.ngpu > 0:
        return
    if args.dist_backend == "nccl":
        args.dist_backend = "gloo"
    launched = (
        args.dist_launcher is not None
        or args.dist_rank is not None
        or "RANK" in os.environ
    )
    if args.multiprocessing_distributed and not launched:
        raise MeritInputError(
            "--multiprocessing_distributed true spawns one process per GPU and "
            "--ngpu 0 has none: on CPU start the processes with torchrun "
            f"({TORCHRUN}; README: Training on several GPUs or CPUs)"
        )


def drop_unread_text(args: argparse.Namespace) -> None:
    """Leave the transcripts (data name ``text``) out of the data lists of a
    config without a text frontend (and of ``--collect_stats``): the recipe
    passes every file a data directory has, and nothing would read them."""
    if text_class(args) is not None and not args.collect_stats:
        return
    for split in ("train", "valid"):
        key = f"{split}_data_path_and_name_and_type"
        entries = getattr(args, key, None) or []
        kept = [e for e in entries if e[1] != "text"]
        if len(kept) != len(entries):
            logger.info(f"{split} data: 'text' not read (no text_frontend)")
            setattr(args, key, kept)


def dynamic_mixing(args: argparse.Namespace) -> bool:
    """Whether training mixes on the fly (never while collecting statistics:
    they come from the stage-2 files)."""
    return getattr(args, "dynamic_mixing", None) is not None and not getattr(
        args, "collect_stats", False
    )


def augmentation(args: argparse.Namespace) -> bool:
    """Whether training augments on the fly (not while collecting statistics)."""
    return getattr(args, "augmentation", None) is not None and not getattr(
        args, "collect_stats", False
    )


def check_pipeline(args: argparse.Namespace) -> None:
    """Data pipeline and step options a config file sets past argparse's checks."""
    if dynamic_mixing(args):
        build_mixer(args.dynamic_mixing, args.fs, args.seed)  # errors name the key
    if augmentation(args):
        augmenter = build_augmenter(args.augmentation, args.fs, args.seed)
    for option, on in (
        (DM_OPTION, dynamic_mixing(args)),
        (AUG_OPTION, augmentation(args)),
    ):
        if not on:
            continue
        if args.iterator_type not in ("sequence", "category"):
            raise MeritInputError(
                f"{option} needs iterator_type: sequence or category, not "
                f"{args.iterator_type!r}"
            )
        if args.max_cache_size != 0:
            raise MeritInputError(
                f"{option}: max_cache_size must be 0: ESPnet's dataset cache keeps "
                "an utterance as first preprocessed, so every epoch would see the "
                "first epoch's draw"
            )
    if not args.collect_stats:
        args.emotion_list = class_list(args.emotion_list, "--emotion_list")
        for name, spec in task_specs(args).items():
            made = spec.target.name in GENERATED
            if made and not augmentation(args):
                raise MeritInputError(
                    f"tasks.{name} trains on '{spec.target.name}', which only "
                    f"--{AUG_OPTION} makes: configure {AUG_OPTION} (types, pools)"
                )
            if spec.target.name == AUG_LABEL:
                classes = list(spec.target.classes)
                if classes != augmenter.types or "none" not in classes:
                    raise MeritInputError(
                        f"tasks.{name}.head_conf.classes {classes} must be "
                        f"{AUG_OPTION}.types ({augmenter.types}), including 'none' "
                        "(the label of the unaugmented validation data)"
                    )
    if args.crop not in CROPS:
        raise MeritInputError(f"crop: {args.crop!r} is not one of {list(CROPS)}")
    if args.balanced_batches != "none" and not args.reshuffle_batches:
        raise MeritInputError(
            f"balanced_batches: {args.balanced_batches} draws the batches anew every "
            "epoch: it needs reshuffle_batches: true"
        )
    if args.reshuffle_batches and args.iterator_type != "sequence":
        raise MeritInputError(
            f"reshuffle_batches: true needs iterator_type: sequence, "
            f"not {args.iterator_type!r}"
        )
    # ESPnet's trainer passes grad_clip to clip_grad_norm_ as max_norm at every
    # step: 0 zeroes every gradient and a negative value flips their sign.
    if not args.grad_clip > 0:
        raise MeritInputError(
            f"grad_clip: expected a positive norm, or .inf (inf on the command "
            f"line) for no clipping, not {args.grad_clip}"
        )
