"""``lldif-bench run``: train and evaluate one method on one dataset (thin wrapper over run_training)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from lldif_bench.cli.common import device_option, seed_option


def group_value(ctx: click.Context, name: str, value):
    """The command's own value, else the group's when the user set it there, else None (config decides)."""
    if value is not None:
        return value
    root = ctx.find_root()
    if root.get_parameter_source(name) not in (None, ParameterSource.DEFAULT):
        return (root.obj or {}).get(name)
    return None


@click.command("run")
@click.option("--method", "-m", required=True, help="Method name (see `lldif-bench methods`).")
@click.option("--data", "-d", required=True, type=click.Path(path_type=Path),
              help="Dataset folder: a source dataset, a make-dataset copy or a synthetic root.")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="YAML file of settings (keys as in a run's config.yaml 'config' section).")
@click.option("--epochs", type=int, help="Epochs (per stage for multi-stage methods).")
@click.option("--batch-size", type=int, help="Global batch size (split across DDP ranks).")
@click.option("--lr", type=float, help="Base learning rate.")
@click.option("--image-size", type=int, help="Square input size in pixels.")
@click.option("--out", type=click.Path(path_type=Path), help="Folder of runs and leaderboard.csv [runs].")
@click.option("--name", help="Run folder name [<method>-<dataset>-<condition>-s<seed>].")
@click.option("--resume", is_flag=True, default=None, help="Continue a killed run from its last checkpoint.")
@click.option("--overwrite", is_flag=True, default=None, help="Delete an existing run folder of the same name first.")
@device_option
@seed_option
@click.option("--amp/--no-amp", default=None, help="bf16 autocast on CUDA (ignored on CPU) [on].")
@click.option("--workers", type=int, help="Threads for packing and batch prefetch [4].")
@click.option("--pretrained", help="Backbone init: scratch, imagenet, or a checkpoint PATH [method default].")
@click.option("--stage", help="Run only this stage (name or 0-based index) of a multi-stage method.")
@click.option("--compile", "compile_", is_flag=True, default=None, help="torch.compile the model.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Where the packed image cache goes "
              "[DATA/.cache].")
@click.option("--limit-batches", type=int, help="Train at most N batches per epoch (smoke tests).")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.pass_context
def command(ctx: click.Context, method, data, config_file, epochs, batch_size, lr, image_size, out, name, resume,
            overwrite, device, seed, amp, workers, pretrained, stage, compile_, cache_dir, limit_batches,
            no_progress) -> None:
    """Train METHOD on DATA and evaluate it on the test split.

    Settings: suite defaults (the LLDif paper: Adam, lr 3.5e-4, batch 64, wd 1e-4, 200 epochs) <
    the method's own DEFAULTS < --config FILE < flags. Writes OUT/NAME/ (config.yaml, metrics.csv,
    checkpoints/, results.json, predictions.csv) and appends a row to OUT/leaderboard.csv.
    Multi-GPU: torchrun --nproc_per_node G $(which lldif-bench) run …
    """
    from lldif_bench.training import resolve_config, run_training

    cli = {"method": method, "data": str(data), "epochs": epochs, "batch_size": batch_size, "lr": lr,
           "image_size": image_size, "out": str(out) if out else None, "name": name, "resume": resume,
           "overwrite": overwrite, "device": group_value(ctx, "device", device),
           "seed": group_value(ctx, "seed", seed), "amp": amp, "workers": workers, "pretrained": pretrained,
           "stage": stage, "compile": compile_, "cache_dir": str(cache_dir) if cache_dir else None,
           "limit_batches": limit_batches, "progress": False if no_progress else None,
           "command_line": " ".join(sys.argv)}
    cfg = resolve_config(cli, config_file)
    run_dir = run_training(cfg)
    results = run_dir / "results.json"
    if results.is_file():
        r = json.loads(results.read_text())
        click.echo(f"{run_dir}: accuracy {r['final']['accuracy']:.4f}, mean class accuracy "
                   f"{r['final']['mean_class_accuracy']:.4f} after {r['epochs']} epochs "
                   f"(best epoch {r['best']['epoch']}: {r['best']['accuracy']:.4f}, test-selected)")
    else:
        click.echo(f"{run_dir}: stage finished (results.json comes with the final stage)")
