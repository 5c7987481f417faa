"""MeritTask: ESPnet task for joint speech enhancement and emotion recognition."""

import argparse
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.tasks.abs_task import AbsTask, optim_classes
from espnet2.train.class_choices import ClassChoices
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import float_or_none, str2bool, str_or_none
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.layers.normalize import WaveGlobalMVN, WaveUtteranceMVN
from espnet2_merit.merit.espnet_model import ESPnetMeritModel
from espnet2_merit.merit.frontend.abs_frontend import AbsMultiLayerFrontend
from espnet2_merit.merit.frontend.fbank import FbankFrontend
from espnet2_merit.merit.frontend.s3prl import S3prlMultiLayerFrontend
from espnet2_merit.merit.fusion.abs_fusion import AbsFusion
from espnet2_merit.merit.fusion.dense_moe import DenseMoEFusion
from espnet2_merit.merit.fusion.last_layer import LastLayerFusion
from espnet2_merit.merit.fusion.sparse_moe import SparseMoEFusion
from espnet2_merit.merit.fusion.weighted_sum import WeightedSumFusion
from espnet2_merit.merit.loss.abs_loss import AbsSERLoss
from espnet2_merit.merit.loss.ccc import CCCLoss
from espnet2_merit.merit.loss.classification import FocalLoss, WeightedCrossEntropy
from espnet2_merit.merit.se_head.abs_se_head import AbsSEHead
from espnet2_merit.merit.se_head.blstm_mask import BLSTMMaskSEHead
from espnet2_merit.merit.ser_head.abs_ser_head import AbsSERHead
from espnet2_merit.merit.ser_head.attentive_pooling import AttentivePoolingClassifier
from espnet2_merit.merit.ser_head.attribute_regressor import AttributeRegressor
from espnet2_merit.train.data_check import check_data, label_counts
from espnet2_merit.train.preprocessor import MeritPreprocessor
from espnet2_merit.train.trainer import MeritTrainer

frontend_choices = ClassChoices(
    name="frontend",
    classes=dict(s3prl=S3prlMultiLayerFrontend, fbank=FbankFrontend),
    type_check=AbsMultiLayerFrontend,
    default="s3prl",
)
normalize_choices = ClassChoices(
    "normalize",
    classes=dict(global_mvn=WaveGlobalMVN, utterance_mvn=WaveUtteranceMVN),
    type_check=AbsNormalize,
    default=None,
    optional=True,
)
fusion_choices = ClassChoices(
    name="fusion",
    classes=dict(
        sparse_moe=SparseMoEFusion,
        dense_moe=DenseMoEFusion,
        weighted_sum=WeightedSumFusion,
        last_layer=LastLayerFusion,
    ),
    type_check=AbsFusion,
    default="sparse_moe",
)
se_head_choices = ClassChoices(
    name="se_head",
    classes=dict(blstm_mask=BLSTMMaskSEHead),
    type_check=AbsSEHead,
    default="blstm_mask",
    optional=True,
)
ser_head_choices = ClassChoices(
    name="ser_head",
    classes=dict(
        attentive_pooling=AttentivePoolingClassifier,
        attribute_regressor=AttributeRegressor,
    ),
    type_check=AbsSERHead,
    default="attentive_pooling",
    optional=True,
)
ser_loss_choices = ClassChoices(
    name="ser_loss",
    classes=dict(ce=WeightedCrossEntropy, focal=FocalLoss, ccc=CCCLoss),
    type_check=AbsSERLoss,
    default="ce",
    optional=True,
)
model_choices = ClassChoices(
    name="model",
    classes=dict(merit=ESPnetMeritModel),
    type_check=ESPnetMeritModel,
    default="merit",
)

logger = logging.getLogger(__name__)


def _choice(choices: ClassChoices, args: argparse.Namespace) -> Optional[type]:
    """The class chosen by ``--<name>``; "none"/null -> None; unknown -> clear error."""
    name = getattr(args, choices.name)
    if name is None or (choices.optional and str(name).lower() in ("none", "null")):
        return None
    if str(name).lower() not in choices.classes:
        raise MeritInputError(
            f"{choices.name}: '{name}' is not one of {choices.choices()} "
            f"(set '{choices.name}:' in the config or --{choices.name})"
        )
    return choices.classes[str(name).lower()]


def _read_list(value, option: str) -> Optional[List[str]]:
    """A list given inline in the config, or a file with one entry per line."""
    if value is None or isinstance(value, (list, tuple)):
        return None if value is None else [str(v) for v in value]
    path = Path(value)
    if not path.exists():
        raise MeritInputError(f"--{option}: no such file {value}")
    entries = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not entries:
        raise MeritInputError(f"--{option}: {value} is empty")
    return entries


def _data_path(args: argparse.Namespace, name: str) -> Optional[str]:
    for path, key, _ in args.train_data_path_and_name_and_type or []:
        if key == name:
            return path
    return None


class MeritTask(AbsTask):
    """Noisy ``speech`` (+ clean ``speech_ref1``, ``emotion``, ``emotion_attr``)."""

    num_optimizers: int = 1
    class_choices_list = [
        frontend_choices,
        normalize_choices,
        fusion_choices,
        se_head_choices,
        ser_head_choices,
        ser_loss_choices,
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
            "--emotion_list",
            type=str_or_none,
            default=None,
            help="Emotion classes in output order: a file with one per line, or a "
            "list in the config",
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
            help="Randomly crop longer training utterances to this length",
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
            "--model_conf",
            action=NestedDictAction,
            default=dict(),
            help="Keyword arguments of the model (loss weights)",
        )
        for class_choices in cls.class_choices_list:
            if class_choices.name != "model":
                class_choices.add_arguments(group)
        group.add_argument("--model", default="merit", choices=model_choices.choices())

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable:
        return CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Callable:
        return MeritPreprocessor(
            train=train,
            emotion_list=_read_list(args.emotion_list, "emotion_list"),
            num_attributes=len(args.attribute_list),
            fs=args.fs,
            max_speech_sec=args.max_speech_sec,
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
        # Which of these a config needs depends on its heads: checked in main_worker.
        return ("speech_ref1", "emotion", "emotion_attr")

    @classmethod
    def main_worker(cls, args: argparse.Namespace):
        args.emotion_list = _read_list(args.emotion_list, "emotion_list")
        if args.check_data and not args.dry_run:
            check_data(args, cls.needed_data(args))
        super().main_worker(args)

    @classmethod
    def needed_data(cls, args: argparse.Namespace) -> Dict[str, str]:
        """Data name -> why this config needs it."""
        needed = {"speech": "the model needs noisy speech"}
        if _choice(se_head_choices, args) is not None and not args.collect_stats:
            needed["speech_ref1"] = f"the SE head is on (se_head: {args.se_head})"
        ser = _choice(ser_head_choices, args)
        if ser is not None and not args.collect_stats:
            needed[ser.target] = f"the SER head is on (ser_head: {args.ser_head})"
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
    @typechecked
    def build_model(cls, args: argparse.Namespace) -> ESPnetMeritModel:
        args.emotion_list = _read_list(args.emotion_list, "emotion_list")
        frontend_class = _choice(frontend_choices, args)
        frontend = frontend_class(**{"fs": args.fs, **args.frontend_conf})
        normalize_class = _choice(normalize_choices, args)
        normalize = (
            None if normalize_class is None else normalize_class(**args.normalize_conf)
        )

        se_class = _choice(se_head_choices, args)
        ser_class = _choice(ser_head_choices, args)
        tasks = [t for t, c in (("se", se_class), ("ser", ser_class)) if c]
        if not tasks:
            raise MeritInputError(
                "se_head and ser_head are both none: nothing to train"
            )
        fusion = _choice(fusion_choices, args)(
            input_layers=frontend.num_layers(),
            input_size=frontend.output_size(),
            tasks=tasks,
            **args.fusion_conf,
        )
        se_head = None
        if se_class is not None:
            se_head = se_class(
                input_size=fusion.output_size(),
                feat_shift=frontend.frame_shift(),
                **args.se_head_conf,
            )

        ser_head = ser_loss = None
        if ser_class is not None:
            if ser_class.target == "emotion":
                if not args.emotion_list:
                    raise MeritInputError(
                        "the SER classifier needs --emotion_list (a file or a list)"
                    )
                num_outputs = len(args.emotion_list)
            else:
                num_outputs = len(args.attribute_list)
            ser_head = ser_class(
                input_size=fusion.output_size(),
                num_outputs=num_outputs,
                **args.ser_head_conf,
            )
            loss_class = _choice(ser_loss_choices, args)
            if loss_class is None:
                raise MeritInputError("ser_head is on but ser_loss is none")
            if loss_class.target != ser_class.target:
                raise MeritInputError(
                    f"ser_loss '{args.ser_loss}' trains on '{loss_class.target}' but "
                    f"ser_head '{args.ser_head}' predicts '{ser_class.target}'"
                )
            if args.ser_loss_conf.get("class_weights") == "balanced":
                args.ser_loss_conf["class_weights"] = cls.balanced_weights(args)
            ser_loss = loss_class(num_classes=num_outputs, **args.ser_loss_conf)

        return _choice(model_choices, args)(
            frontend=frontend,
            fusion=fusion,
            se_head=se_head,
            ser_head=ser_head,
            ser_loss=ser_loss,
            normalize=normalize,
            emotion_list=args.emotion_list,
            **args.model_conf,
        )

    @classmethod
    def balanced_weights(cls, args: argparse.Namespace) -> List[float]:
        """weight_c = N / (C * count_c) from the training data's ``emotion`` file.

        The numbers replace "balanced" in the arguments, so config.yaml keeps them
        and a model rebuilt from it (inference) needs no training data.
        """
        path = _data_path(args, "emotion")
        if path is None:
            raise MeritInputError(
                "ser_loss_conf.class_weights: balanced needs the training labels: "
                "add --train_data_path_and_name_and_type <dir>/emotion,emotion,text"
            )
        counts = label_counts(path, args.emotion_list)
        missing = [c for c, n in zip(args.emotion_list, counts) if n == 0]
        if missing:
            raise MeritInputError(f"{path}: no training utterance of class {missing}")
        weights = sum(counts) / (len(counts) * np.array(counts, dtype=float))
        logger.info(f"class counts {dict(zip(args.emotion_list, counts))}")
        return [round(float(w), 6) for w in weights]
