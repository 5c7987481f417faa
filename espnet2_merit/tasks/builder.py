"""The one construction path of a MERIT model: the registries of frontends,
fusions, task heads and losses, the ``tasks:`` config and its checks, and
``build_model`` / ``build_model_from_file``. Training (``MeritTask``), inference,
the CLI, export, packing and the benchmarks all build through here.

A config declares its tasks under ``tasks:``, each with a head, its options, a
loss, its options and a weight::

    tasks:
        se:
            head: blstm_mask
            loss: log1p_l1
        ser:
            head: attentive_pooling
            head_conf: {hidden_size: 1024, dropout: 0.5}
            loss: ce
            loss_conf: {class_weights: balanced}
            weight: 1.0

and any entry can be overridden from the command line as ESPnet users expect
(``--tasks ser.loss=focal``, ``--tasks ser.head_conf.dropout=0.3``, ``--tasks
se=null`` removes a task). This module does not import ESPnet's training stack
(``espnet2.tasks``), so inference starts in seconds.
"""

import argparse
import contextlib
import inspect
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
import yaml
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.train.class_choices import ClassChoices
from espnet2.utils.get_default_kwargs import get_default_kwargs
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.layers.normalize import WaveGlobalMVN, WaveUtteranceMVN
from espnet2_merit.merit.espnet_model import ESPnetMeritModel
from espnet2_merit.merit.frontend.abs_frontend import AbsMultiLayerFrontend
from espnet2_merit.merit.frontend.abs_text_frontend import AbsTextFrontend
from espnet2_merit.merit.frontend.fbank import FbankFrontend
from espnet2_merit.merit.frontend.hf_text import HFTextFrontend
from espnet2_merit.merit.frontend.s3prl import S3prlMultiLayerFrontend
from espnet2_merit.merit.fusion.abs_fusion import AbsFusion
from espnet2_merit.merit.fusion.dense_moe import DenseMoEFusion
from espnet2_merit.merit.fusion.last_layer import LastLayerFusion
from espnet2_merit.merit.fusion.sparse_moe import SparseMoEFusion
from espnet2_merit.merit.fusion.weighted_sum import WeightedSumFusion
from espnet2_merit.merit.heads.abs_task_head import AbsTaskHead
from espnet2_merit.merit.heads.attentive_pooling import AttentivePoolingClassifier
from espnet2_merit.merit.heads.attribute_regressor import AttributeRegressor
from espnet2_merit.merit.heads.blstm_mask import BLSTMMaskSEHead
from espnet2_merit.merit.heads.multimodal_pooling import MultimodalPoolingClassifier
from espnet2_merit.merit.heads.reconstruction import ReconstructionHead
from espnet2_merit.merit.heads.targets import (
    LabelTarget,
    SourceTarget,
    Target,
    VectorTarget,
    WaveformTarget,
)
from espnet2_merit.merit.loss.abs_loss import AbsLoss
from espnet2_merit.merit.loss.ccc import CCCLoss
from espnet2_merit.merit.loss.classification import FocalLoss, WeightedCrossEntropy
from espnet2_merit.merit.loss.enhancement import Log1pL1Loss, SISNRLoss
from espnet2_merit.merit.loss.reconstruction import SpectralL1
from espnet2_merit.train.data_check import label_counts
from espnet2_merit.utils.checkpoint import check_checkpoint, load_state_dict
from espnet2_merit.utils.datadir import read_list
from espnet2_merit.utils.packing import FILE_ENTRIES, HUB_SECTIONS

frontend_choices = ClassChoices(
    name="frontend",
    classes=dict(s3prl=S3prlMultiLayerFrontend, fbank=FbankFrontend),
    type_check=AbsMultiLayerFrontend,
    default="s3prl",
)
# Transcripts -> token layer stack, for the heads that read text (uses_text).
text_frontend_choices = ClassChoices(
    name="text_frontend",
    classes=dict(hf_text=HFTextFrontend),
    type_check=AbsTextFrontend,
    default=None,
    optional=True,
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
# The task-head family and the loss family: chosen per task under ``tasks:``.
head_choices = ClassChoices(
    name="head",
    classes=dict(
        blstm_mask=BLSTMMaskSEHead,
        attentive_pooling=AttentivePoolingClassifier,
        multimodal_pooling=MultimodalPoolingClassifier,
        attribute_regressor=AttributeRegressor,
        reconstruction=ReconstructionHead,
    ),
    type_check=AbsTaskHead,
    default=None,
)
loss_choices = ClassChoices(
    name="loss",
    classes=dict(
        log1p_l1=Log1pL1Loss,
        si_snr=SISNRLoss,
        ce=WeightedCrossEntropy,
        focal=FocalLoss,
        ccc=CCCLoss,
        spec_l1=SpectralL1,
    ),
    type_check=AbsLoss,
    default=None,
)
model_choices = ClassChoices(
    name="model",
    classes=dict(merit=ESPnetMeritModel),
    type_check=ESPnetMeritModel,
    default="merit",
)

# The paper's two tasks: what a config without ``tasks:`` trains.
DEFAULT_TASKS = {
    "se": {"head": "blstm_mask", "loss": "log1p_l1"},
    "ser": {"head": "attentive_pooling", "loss": "ce"},
}
TASK_KEYS = ("head", "head_conf", "loss", "loss_conf", "weight")
TASK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Arguments the task passes itself; a config may not set them.
INJECTED = {
    "frontend": ("fs",),
    "fusion": ("input_layers", "input_size", "tasks"),
    "head": ("input_size", "frame_shift", "target", "loss", "text_layers", "text_size"),
    "loss": ("target",),
    "model": (
        "frontend",
        "fusion",
        "heads",
        "task_weights",
        "normalize",
        "text_frontend",
    ),
    "normalize": (),
    "text_frontend": (),
}

logger = logging.getLogger(__name__)


@dataclass
class TaskSpec:
    """One entry of ``tasks:``, resolved: classes, options and its target."""

    name: str
    head: str
    head_class: type
    head_conf: Dict[str, Any]  # the head's own options (no target/classes)
    loss: str
    loss_class: type
    loss_conf: Dict[str, Any]
    weight: float
    target: Target
    extra: List[Target]  # further data the head reads (its extra_targets)

    @property
    def targets(self) -> List[Target]:
        """Every data name the task reads, its target first."""
        return [self.target, *self.extra]


def _choice(choices: ClassChoices, name: Any, where: str) -> Optional[type]:
    """The class registered as ``name``; "none"/null -> None if optional."""
    if name is None or (choices.optional and str(name).lower() in ("none", "null")):
        return None
    if str(name).lower() not in choices.classes:
        raise MeritInputError(
            f"{where}: '{name}' is not one of {list(choices.classes)}"
        )
    return choices.classes[str(name).lower()]


def class_list(value, option: str) -> Optional[List[str]]:
    """A class list given inline in the config, or a file with one per line."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        classes = [str(v) for v in value]
        repeated = sorted({c for c in classes if classes.count(c) > 1})
        if repeated or not classes:
            raise MeritInputError(
                f"{option}: expected distinct class names, got {classes}"
            )
        return classes
    return read_list(value, option)


def _data_path(args: argparse.Namespace, name: str) -> Optional[str]:
    for path, key, _ in getattr(args, "train_data_path_and_name_and_type", None) or []:
        if key == name:
            return path
    return None


def _conf(value: Any, where: str) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MeritInputError(f"{where}: expected a mapping of options, got {value!r}")
    return dict(value)


def check_options(cls: type, conf: Dict[str, Any], where: str, family: str) -> None:
    """Unknown options, or options the task sets itself, are errors naming the
    config field (instead of a TypeError from deep inside the constructor)."""
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    own = [n for n in params if n not in ("self", *INJECTED[family])]
    for key in conf:
        if key in INJECTED[family]:
            raise MeritInputError(f"{where}.{key}: set by the task, not the config")
        if key not in own and not takes_any:
            raise MeritInputError(
                f"{where}: unknown option '{key}' of {cls.__name__} "
                f"(options: {', '.join(own) or 'none'})"
            )


def with_defaults(cls: type, conf: Dict[str, Any], family: str) -> Dict[str, Any]:
    """``conf`` completed with the constructor's defaults (ESPnet's
    ``get_default_kwargs``), so config.yaml rebuilds the model even if a
    default changes later."""
    defaults = get_default_kwargs(cls.__init__)
    for key in ("self", *INJECTED[family]):
        defaults.pop(key, None)
    return {**defaults, **conf}


def task_specs(args: argparse.Namespace) -> Dict[str, TaskSpec]:
    """Resolve and check ``args.tasks``: every error names the config field."""
    tasks = getattr(args, "tasks", None)
    if not isinstance(tasks, dict):
        raise MeritInputError(f"tasks: expected a mapping of task names, got {tasks!r}")
    specs: Dict[str, TaskSpec] = {}
    owners: Dict[str, str] = {}
    for name, entry in tasks.items():
        if entry is None:  # removed, e.g. by --tasks se=null
            continue
        where = f"tasks.{name}"
        if not TASK_NAME.match(str(name)):
            raise MeritInputError(
                f"{where}: task names are lower-case identifiers ([a-z][a-z0-9_]*)"
            )
        if not isinstance(entry, dict):
            raise MeritInputError(f"{where}: expected a mapping with {TASK_KEYS}")
        unknown = [k for k in entry if k not in TASK_KEYS]
        if unknown:
            raise MeritInputError(
                f"{where}: unknown key '{unknown[0]}' (expected {', '.join(TASK_KEYS)})"
            )
        if entry.get("head") is None:
            raise MeritInputError(
                f"{where}.head: missing (one of {list(head_choices.classes)})"
            )
        head_class = _choice(head_choices, entry["head"], f"{where}.head")
        loss = entry.get("loss") or head_class.default_loss
        loss_class = _choice(loss_choices, loss, f"{where}.loss")
        if loss_class.kind != head_class.target_kind:
            raise MeritInputError(
                f"{where}.loss: '{loss}' is a {loss_class.kind} loss but head "
                f"'{entry['head']}' predicts a {head_class.target_kind} target "
                f"(losses for it: {_losses_for(head_class.target_kind)})"
            )
        head_conf = _conf(entry.get("head_conf"), f"{where}.head_conf")
        loss_conf = _conf(entry.get("loss_conf"), f"{where}.loss_conf")
        target = _target(args, head_class, head_conf, f"{where}.head_conf")
        if target.name in owners:
            raise MeritInputError(
                f"{where}: tasks '{owners[target.name]}' and '{name}' both predict "
                f"'{target.name}' (their outputs would be the same files)"
            )
        owners[target.name] = name
        check_options(head_class, head_conf, f"{where}.head_conf", "head")
        check_options(loss_class, loss_conf, f"{where}.loss_conf", "loss")
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise MeritInputError(f"{where}.weight: expected a number, got {weight!r}")
        specs[name] = TaskSpec(
            name, str(entry["head"]), head_class, head_conf, str(loss), loss_class,
            loss_conf, float(weight), target,
            head_class.extra_targets(target, head_conf),
        )  # fmt: skip
    if not specs:
        raise MeritInputError("tasks: no task declared: nothing to train")
    return specs


def _losses_for(kind: str) -> List[str]:
    return [n for n, c in loss_choices.classes.items() if c.kind == kind]


def _target(
    args: argparse.Namespace, head_class: type, head_conf: Dict, where: str
) -> Target:
    """The head's target: ``head_conf.target`` (default the head's), with its
    class list (``--emotion_list`` for emotion, else ``head_conf.classes``) or
    value names (``--attribute_list`` for emotion_attr, else
    ``head_conf.names``). Pops these entries from ``head_conf``."""
    name = str(head_conf.pop("target", None) or head_class.default_target)
    kind = head_class.target_kind
    if kind == "waveform":
        return WaveformTarget(name)
    if kind == "source":
        return SourceTarget(name)
    if kind == "label":
        given = class_list(head_conf.pop("classes", None), f"{where}.classes")
        if name == "emotion":
            classes = class_list(getattr(args, "emotion_list", None), "--emotion_list")
            if classes is None:
                raise MeritInputError(
                    f"{where}: the task classifies 'emotion': give --emotion_list "
                    "(a file with one class per line, or a list in the config)"
                )
            if given is not None and given != classes:
                raise MeritInputError(
                    f"{where}.classes {given} differ from --emotion_list {classes}"
                )
            return LabelTarget(name, classes, "--emotion_list")
        if given is None:
            raise MeritInputError(
                f"{where}.classes: the classes of '{name}' are needed"
            )
        return LabelTarget(name, given, f"{where}.classes")
    if kind == "vector":
        names = head_conf.pop("names", None)
        if name == "emotion_attr":
            names = names or list(getattr(args, "attribute_list", None) or [])
        if not names:
            raise MeritInputError(
                f"{where}.names: the value names of '{name}' are needed"
            )
        return VectorTarget(name, [str(n) for n in names])
    raise ValueError(f"{head_class.__name__}: unknown target kind '{kind}'")


def task_record(spec: TaskSpec) -> Dict[str, Any]:
    """A task entry as config.yaml records it: every option spelled out."""
    head_conf: Dict[str, Any] = {"target": spec.target.name}
    if isinstance(spec.target, LabelTarget) and spec.target.name != "emotion":
        head_conf["classes"] = list(spec.target.classes)
    if isinstance(spec.target, VectorTarget) and spec.target.name != "emotion_attr":
        head_conf["names"] = list(spec.target.names)
    head_conf.update(with_defaults(spec.head_class, spec.head_conf, "head"))
    return {
        "head": spec.head,
        "head_conf": head_conf,
        "loss": spec.loss,
        "loss_conf": with_defaults(spec.loss_class, spec.loss_conf, "loss"),
        "weight": spec.weight,
    }


@typechecked
def build_model(args: argparse.Namespace) -> ESPnetMeritModel:
    """Build the model of ``args`` and record every option it was built with
    in ``args`` (written to config.yaml), defaults included."""
    args.emotion_list = class_list(args.emotion_list, "--emotion_list")
    specs = task_specs(args)

    frontend_class = _choice(frontend_choices, args.frontend, "frontend")
    frontend_conf = _conf(args.frontend_conf, "frontend_conf")
    check_options(frontend_class, frontend_conf, "frontend_conf", "frontend")
    local = frontend_conf.get("path_or_url")
    if isinstance(local, str) and Path(local).is_file():  # s3prl loads it
        check_checkpoint(local, "frontend_conf.path_or_url")
    # s3prl re-seeds torch (with 0) while it builds an upstream: without this,
    # everything built after the frontend would start from the same weights
    # whatever --seed says.
    with preserved_rng():
        frontend = frontend_class(fs=args.fs, **frontend_conf)
    frontend.freeze_unreachable()  # parameters DDP would wait for in vain

    text_frontend = build_text_frontend(args, specs)

    normalize_class = _choice(normalize_choices, args.normalize, "normalize")
    normalize = None
    if normalize_class is not None:
        normalize_conf = _conf(args.normalize_conf, "normalize_conf")
        check_options(normalize_class, normalize_conf, "normalize_conf", "normalize")
        normalize = normalize_class(**normalize_conf)
        args.normalize_conf = with_defaults(
            normalize_class, normalize_conf, "normalize"
        )

    fusion_class = _choice(fusion_choices, args.fusion, "fusion")
    fusion_conf = _conf(args.fusion_conf, "fusion_conf")
    check_options(fusion_class, fusion_conf, "fusion_conf", "fusion")
    fusion = fusion_class(
        input_layers=frontend.num_layers(),
        input_size=frontend.output_size(),
        tasks=list(specs),
        **fusion_conf,
    )

    heads = {}
    for name, spec in specs.items():
        loss_conf = dict(spec.loss_conf)
        if loss_conf.get("class_weights") == "balanced":
            loss_conf["class_weights"] = balanced_weights(args, spec.target)
            spec.loss_conf = loss_conf
        loss = spec.loss_class(target=spec.target, **loss_conf)
        text = {}
        if spec.head_class.uses_text:
            text = dict(
                text_layers=text_frontend.num_layers(),
                text_size=text_frontend.output_size(),
            )
        heads[name] = spec.head_class(
            input_size=fusion.output_size(),
            frame_shift=frontend.frame_shift(),
            target=spec.target,
            loss=loss,
            **text,
            **spec.head_conf,
        )

    model_class = _choice(model_choices, args.model, "model")
    model_conf = _conf(args.model_conf, "model_conf")
    check_options(model_class, model_conf, "model_conf", "model")
    model = model_class(
        frontend=frontend,
        fusion=fusion,
        heads=heads,
        task_weights={n: s.weight for n, s in specs.items()},
        normalize=normalize,
        text_frontend=text_frontend,
        **model_conf,
    )
    args.tasks = {n: task_record(s) for n, s in specs.items()}
    args.frontend_conf = with_defaults(frontend_class, frontend_conf, "frontend")
    args.fusion_conf = with_defaults(fusion_class, fusion_conf, "fusion")
    args.model_conf = with_defaults(model_class, model_conf, "model")
    return model


def text_class(args: argparse.Namespace) -> Optional[type]:
    """The config's text frontend class (None: no text_frontend)."""
    name = getattr(args, "text_frontend", None)
    return _choice(text_frontend_choices, name, "text_frontend")


def build_text_frontend(
    args: argparse.Namespace, specs: Dict[str, TaskSpec]
) -> Optional[AbsTextFrontend]:
    """The config's text frontend (options recorded in ``args``); a head that
    reads text without one, or one no head reads, is an error."""
    readers = [n for n, s in specs.items() if s.head_class.uses_text]
    cls = text_class(args)
    if cls is None:
        if readers:
            raise MeritInputError(
                f"tasks.{readers[0]}.head: '{specs[readers[0]].head}' reads the "
                "transcripts: set text_frontend (e.g. hf_text) and give the data "
                "'text'"
            )
        return None
    if not readers:
        raise MeritInputError(
            "text_frontend: no task reads text (its parameters would never train); "
            "use a head such as multimodal_pooling, or text_frontend: none"
        )
    conf = _conf(getattr(args, "text_frontend_conf", None), "text_frontend_conf")
    check_options(cls, conf, "text_frontend_conf", "text_frontend")
    with preserved_rng():  # loading pre-trained weights may seed
        text_frontend = cls(**conf)
    text_frontend.freeze_unreachable()
    args.text_frontend_conf = with_defaults(cls, conf, "text_frontend")
    return text_frontend


def balanced_weights(args: argparse.Namespace, target: LabelTarget) -> List[float]:
    """weight_c = N / (C * count_c) from the training data's labels of
    ``target``.

    The numbers replace "balanced" in the arguments, so config.yaml keeps them
    and a model rebuilt from it (inference) needs no training data.
    """
    path = _data_path(args, target.name)
    if path is None:
        raise MeritInputError(
            f"loss_conf.class_weights: balanced needs the training labels of "
            f"'{target.name}': add --train_data_path_and_name_and_type "
            f"<dir>/{target.file_name},{target.name},text"
        )
    counts = label_counts(path, target)
    missing = [c for c, n in zip(target.classes, counts) if n == 0]
    if missing:
        raise MeritInputError(f"{path}: no training utterance of class {missing}")
    weights = sum(counts) / (len(counts) * np.array(counts, dtype=float))
    logger.info(f"class counts {dict(zip(target.classes, counts))}")
    return [round(float(w), 6) for w in weights]


def build_model_from_file(
    config_file: Union[Path, str, None] = None,
    model_file: Union[Path, str, None] = None,
    device: str = "cpu",
    allow_random_init: bool = False,
) -> Tuple[ESPnetMeritModel, argparse.Namespace]:
    """The model of a training ``config.yaml`` with its weights, strictly.

    Unlike ESPnet's (which ignores missing keys and unpickles anything),
    weights load with ``weights_only=True``; missing, unexpected or
    wrong-shaped parameters and non-finite values are errors naming them.
    Relative file entries of the config (statistics, a local SSL checkpoint)
    are found beside the config, as in a packed model.

    Args:
        config_file: ``config.yaml`` (default: beside ``model_file``).
        model_file: The weights; None only with ``allow_random_init``.
        device: "cpu", "cuda", "cuda:1", ...
        allow_random_init: Keep the initialisation when there are no weights
            (for debugging; predictions are then meaningless).
    """
    if config_file is None:
        if model_file is None:
            raise MeritInputError("give a config file (train_config) and weights")
        config_file = Path(model_file).parent / "config.yaml"
    config_file = Path(config_file)
    if model_file is None and not allow_random_init:
        raise MeritInputError(
            f"no weights (model_file) for {config_file}: the model would predict "
            "with random initial weights (pass allow_random_init to do so anyway)"
        )
    args = read_config(config_file)
    model = build_model(args)
    if model_file is not None:
        state = load_state_dict(model_file, "model file")
        check_state_dict(model, state, model_file, config_file)
        model.load_state_dict(state, strict=True)
    return model.to(device).eval(), args


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """The random generators (Python, NumPy, torch CPU and CUDA) as they were
    before the block, whatever it seeds."""
    state = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
        torch.set_rng_state(state[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def read_config(config_file: Path) -> argparse.Namespace:
    """A training ``config.yaml`` (safe YAML) as arguments; relative file entries
    resolved against its directory when they exist there."""
    if not config_file.is_file():
        raise MeritInputError(f"train_config: no such file {config_file}")
    try:
        conf = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise MeritInputError(f"{config_file}: not valid YAML ({e})") from None
    if not isinstance(conf, dict) or "fusion" not in conf or "tasks" not in conf:
        raise MeritInputError(
            f"{config_file}: not a MERIT training config (no 'fusion'/'tasks' entry)"
        )
    for section, key in FILE_ENTRIES:
        value = (conf.get(section) or {}).get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            beside = config_file.parent / value
            if beside.exists():
                conf[section][key] = str(beside.resolve())
            elif (
                not Path(value).exists()
                and _looks_like_path(value)
                and section not in HUB_SECTIONS  # FacebookAI/roberta-large
            ):
                raise MeritInputError(
                    f"{config_file}: {section}.{key} '{value}' is neither beside the "
                    "config nor relative to the working directory"
                )
    return argparse.Namespace(**conf)


def _looks_like_path(value: str) -> bool:
    return "/" in value or Path(value).suffix in (".pt", ".pth", ".npz", ".ckpt")


def check_state_dict(
    model: torch.nn.Module, state: Dict[str, torch.Tensor], model_file, config_file
) -> None:
    """Missing, unexpected and wrong-shaped parameters are one error naming them."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    shapes = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"missing parameters {_short(missing)}")
        if extra:
            parts.append(f"unexpected parameters {_short(extra)}")
        if shapes:
            parts.append(f"wrong shapes {_short(shapes)}")
        raise MeritInputError(
            f"{model_file} does not match {config_file}: {'; '.join(parts)}"
        )


def _short(names: List[str], n: int = 5) -> str:
    more = f" (+{len(names) - n} more)" if len(names) > n else ""
    return str(names[:n]) + more
