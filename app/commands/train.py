"""``selfpose3d train``: one stage of the self-supervised recipe, or all four in a row.

Examples::

    selfpose3d train --stage backbone      # configs/train/light_backbone.yaml -> runs/light/backbone
    selfpose3d train --stage rootnet       # starts from runs/light/backbone/model_final.pt (the config's init)
    selfpose3d train --stage all --recipe light --out runs/light      # 4 stages chained
    selfpose3d train --stage all --out runs/exact2d --set data.labels=exact   # supervised-2D upper bound
    selfpose3d train --stage all --out runs/mine --set data.source=footage --set data.rig=my_rig.yaml \
        --set data.footage=videos/     # your own footage and its pseudo labels (docs/training.md)
    selfpose3d train --config configs/train/released_posenet.yaml --out runs/posenet
    torchrun --nproc_per_node=2 -m app.cli train --config released_backbone --out runs/backbone

A run folder holds ``config.resolved.yaml``, ``log.jsonl`` (one line per step: every loss, lr,
seconds; one per validation), ``checkpoint.pt`` (resumed automatically unless ``--no-resume``),
``model_final.pt``, ``model_best.pt`` (best mean AP on held-out synthetic scenes) and
``summary.json``. See docs/training_stages.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from app.commands import add_set_option

STAGES = ("backbone", "rootnet", "posenet", "finetune")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stage",
        choices=STAGES + ("all",),
        default=None,
        help="stage to train (default: the config's); 'all' chains the four stages",
    )
    parser.add_argument(
        "--recipe",
        default="light",
        choices=("light", "released"),
        help="config family used when --config is not given (configs/train/<recipe>_<stage>.yaml)",
    )
    parser.add_argument("--config", help="training YAML (name in configs/train or a path)")
    parser.add_argument(
        "--out",
        help="run folder (default runs/<recipe>/<stage>, or runs/<config name> with --config; "
        "with --stage all runs/<recipe>)",
    )
    add_set_option(parser, "a config value", "--set epochs=2 --set data.labels=exact")
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint.pt in the run folder")


def _one(config_name: str, stage: str | None, out: Path, overrides: list[str], resume: bool) -> dict:
    from training.ssl.config import load_train_config
    from training.ssl.trainer import train

    extra = [f"stage={stage}"] if stage else []
    cfg = load_train_config(config_name, extra + overrides)
    print(f"selfpose3d train: stage {cfg.stage} ({config_name}) -> {out}", flush=True)
    summary = train(cfg, out, resume=resume)
    if summary:
        print(json.dumps(summary, indent=2))
    return summary


def run(args: argparse.Namespace) -> int:
    resume = not args.no_resume
    if args.stage == "all":
        root = Path(args.out or f"runs/{args.recipe}")
        init = None
        for stage in STAGES:
            name = f"{args.recipe}_{stage}"
            extra = [] if init is None else [f"init={init}"]
            _one(name, None, root / stage, extra + list(args.overrides), resume)
            best = root / stage / "model_best.pt"
            init = best if stage in ("posenet",) and best.is_file() else root / stage / "model_final.pt"
        print(f"selfpose3d train: all stages done; model {init}")
        return 0
    if args.config:
        name = args.config
        out = Path(args.out or f"runs/{Path(name).stem}")
    else:
        stage = args.stage or "backbone"
        name = f"{args.recipe}_{stage}"
        out = Path(args.out or f"runs/{args.recipe}/{stage}")
    _one(name, args.stage, out, list(args.overrides), resume)
    return 0
