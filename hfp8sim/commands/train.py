"""``hfp8sim train [--model M] [--dataset D] [--scheme S] [--epochs N] [--seed S] [--arch A] --out DIR``: train a
small real network on the bit-accurate datapath (every GEMM of the forward, backward-data and weight-gradient
passes rounded as the arch's array adds), and write ``train.json`` (the config, per-epoch metrics, per-step
loss and loss scale, gradient underflow per layer)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from .args import add_formats_option, load_format_files


def register(sub) -> None:
    from ..training.loop import DATASETS, MODELS, RECIPES, TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train a small real network on the bit-accurate datapath (HFP8 training)",
                       description=__doc__.split("\n\n")[0].replace("``", "'"))
    p.add_argument("--model", choices=MODELS, default=d.model, help=f"network (default {d.model})")
    p.add_argument("--dataset", choices=DATASETS, default=d.dataset,
                   help="digits (sklearn), fashion_mnist (Debian dataset-fashion-mnist) or pydoc (Python's own "
                        f"documentation text, for the transformer); default {d.dataset}")
    p.add_argument("--scheme", default=d.scheme, help=f"precision scheme (default {d.scheme})")
    p.add_argument("--arch", help="arch config whose array and accumulators set the order of additions "
                                  "(default: the default core)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--steps-per-epoch", type=int, help="cut each epoch to this many steps (text: default 200)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default=d.optimizer)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--update-rule", default=d.update_rule,
                   help="fp32_master, fp16_stochastic, round_off_residual or fp16_nearest (default fp32_master)")
    p.add_argument("--loss-scaling", choices=("dynamic", "static", "none"), default=d.loss_scaling)
    p.add_argument("--recipe", choices=tuple(RECIPES), default=d.recipe,
                   help="scaling of FP8 operands: fixed (the format's bias alone), current (per tensor, from its "
                        "amax) or delayed (amax history)")
    p.add_argument("--all-fp8", action="store_true",
                   help="no FP16 exceptions (by default the first and last layers and the softmax input are FP16)")
    p.add_argument("--bn-recalibration", type=int, default=d.bn_recalibration, metavar="IMAGES",
                   help="before each evaluation, recompute the batch norms' statistics over this many training "
                        f"images with the current weights (precise BN; 0: use the moving averages; default "
                        f"{d.bn_recalibration}; models without batch norm ignore it)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default="out/train", help="output folder (default out/train)")
    add_formats_option(p)
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from .. import __version__
    from ..io.outputs import check_output_dir, write_file_atomically
    from ..training.loop import TrainConfig, train, validate

    load_format_files(args.formats)
    config = TrainConfig(model=args.model, dataset=args.dataset, scheme=args.scheme, arch=args.arch,
                         epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                         update_rule=args.update_rule, loss_scaling=args.loss_scaling, recipe=args.recipe,
                         first_last_fp16=not args.all_fp8, softmax_fp16=not args.all_fp8, seed=args.seed,
                         steps_per_epoch=args.steps_per_epoch, bn_recalibration=args.bn_recalibration)
    validate(config)  # a mistake is one line on stderr, before anything else is printed or written
    out = check_output_dir(args.out, "--out")
    print(f"training {config.model} on {config.dataset}, scheme {config.scheme}, seed {config.seed}",
          file=sys.stderr)
    result = train(config, progress=lambda line: print("  " + line, file=sys.stderr, flush=True))
    payload = {"hfp8sim_version": __version__, "config": dataclasses.asdict(config),
               "epochs": [dataclasses.asdict(e) for e in result.epochs], "step_losses": result.step_losses,
               "loss_scales": result.loss_scales, "skipped": result.skipped, "macs": result.macs}
    text = json.dumps(payload, indent=1, sort_keys=True) + "\n"
    write_file_atomically(out / "train.json", lambda path: path.write_text(text))  # never half a record
    final = result.final
    print(f"{config.model} {config.scheme}: {final.metric_name} {final.metric:.4f} after {len(result.epochs)} "
          f"epoch(s), {sum(result.skipped)} skipped steps, {result.macs / 1e9:.2f} G MACs -> {out / 'train.json'}")
    return 0
