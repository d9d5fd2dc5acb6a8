"""Plan (and run) every method/variant a paper table needs, resumably, with an estimated cost.

The plan is data: one :class:`PlannedRun` per (method[, variant], dataset, seed) cell of the table,
with the run name the harness uses (``<method>-<dataset>-<condition>-s<seed>``; LLDif variants add
``-v1`` … to the method part), its status (``done`` when a leaderboard row names the run directory,
``partial`` when the directory exists without ``results.json`` — resumed with ``--resume`` —, ``todo``
otherwise), the exact ``lldif-bench run`` command, and the cost estimate
``train images × epochs ÷ measured training img/s`` (img/s from a few timed training steps of the
method on random tensors on the chosen device; LLDif counts all stage epochs at its stage-2b rate,
an upper bound).
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lldif_bench.errors import UserError
from lldif_bench.reports.tables import TableSpec, get_table

log = logging.getLogger(__name__)

# Train-split sizes the paper states (Sec. 4.1), used only when no data folder is given for a dataset.
PAPER_TRAIN_IMAGES = {"rafdb": 12271, "ferplus": 28709, "kdef": 3920}
STATUSES = ("done", "partial", "todo")


@dataclass
class PlannedRun:
    table: int
    method: str
    variant: str
    dataset: str
    condition: str
    seed: int
    data_dir: str
    run_name: str
    epochs: int
    train_images: int | None
    images_source: str  # "counted" | "paper" | "unknown"
    status: str = "todo"
    img_per_s: float | None = None
    est_seconds: float | None = None
    command: list[str] = field(default_factory=list)
    base_config: str = ""  # LLDif runs: the --lldif-config file every LLDif run (and variant) builds on

    def command_line(self) -> str:
        return shlex.join(self.command)


def run_name(method: str, variant: str, dataset: str, condition: str, seed: int) -> str:
    head = f"{method}-{variant.lower()}" if variant else method
    return f"{head}-{dataset}-{condition}-s{seed}"


def parse_data_options(values: tuple[str, ...] | list[str], spec: TableSpec) -> dict[str, Path]:
    """``--data DIR`` (tables with one dataset) or ``--data KEY=DIR`` (any table) → {dataset: DIR}."""
    out: dict[str, Path] = {}
    for value in values:
        key, sep, path = value.partition("=")
        if sep and key in spec.datasets:
            out[key] = Path(path)
        elif sep and key.lower().replace("-", "") in {f"ll{d}" for d in spec.datasets}:
            out[key.lower().replace("-", "")[2:]] = Path(path)
        elif not sep:
            if len(spec.datasets) != 1:
                raise UserError(f"Table {spec.number} needs {', '.join(spec.datasets)}: give --data KEY=DIR "
                                "for each (e.g. --data rafdb=data/raf-db)")
            out[spec.datasets[0]] = Path(value)
        else:
            raise UserError(f"--data {value!r}: Table {spec.number} uses {', '.join(spec.datasets)}")
    for key, path in out.items():
        if not path.is_dir():
            raise UserError(f"--data {key}={path}: folder does not exist")
    return out


def count_train_images(data_dir: Path) -> int:
    """Training images of a dataset folder, as the dataset adapter reads it."""
    from lldif_bench.datasets import open_dataset

    return sum(1 for r in open_dataset(data_dir).records() if r.split == "train")


def method_epochs(method: str, variant: str = "", overrides: dict | None = None,
                  run_config: dict | None = None) -> int:
    """The recipe epochs of a method (the sum of all stage epochs for LLDif, from its preset and the
    ``stages`` of ``run_config``, the --lldif-config file's values, when given)."""
    from lldif_bench.methods import load_all_methods

    builder = load_all_methods().get(method)
    if method == "lldif":
        from lldif_bench.models.lldif.config import resolve_config
        from lldif_bench.models.lldif.model import stage_plan

        run_config = run_config or {}
        preset = str((run_config.get("method_options") or {}).get("config", "base"))
        per_stage = run_config.get("stages") or {}
        return sum(int((per_stage.get(s.name) or {}).get("epochs", s.epochs))
                   for s in stage_plan(resolve_config(preset, variant or None, overrides)))
    return int((getattr(builder, "DEFAULTS", {}) or {}).get("epochs", 200))


def lldif_run_config(config: str | Path | None) -> Path | None:
    """``--lldif-config``: one of LLDif's shipped run configs by name (``cpu``, ``tiny``, …) or a YAML file."""
    if not config:
        return None
    from lldif_bench.methods import load_all_methods
    from lldif_bench.training.config import named_config

    return named_config(load_all_methods().get("lldif"), config)


def measure_train_throughput(method: str, variant: str = "", device: str = "cpu", batch_size: int = 8,
                             steps: int = 2, image_size: int | None = None,
                             run_config: dict | None = None) -> float:
    """Training images/s of ``method`` (forward + loss + backward + Adam step) on random tensors."""
    import torch

    from lldif_bench.methods import load_all_methods

    builder = load_all_methods().get(method)
    size = int(image_size or (getattr(builder, "DEFAULTS", {}) or {}).get("image_size", 224))
    kwargs = dict((run_config or {}).get("method_options") or {})
    if method == "lldif" and variant:
        kwargs["variant"] = variant
    image_size = image_size or (run_config or {}).get("image_size")
    try:
        model = builder(7, num_train=1024, pretrained=None, **kwargs)
    except TypeError:
        model = builder(7, num_train=1024, pretrained=None)
    if hasattr(model, "set_stage"):
        model.set_stage("2b")
    dev = torch.device(device)
    model = model.to(dev).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.randn(batch_size, 3, size, size, generator=gen).to(dev),
        "label": torch.randint(0, 7, (batch_size,), generator=gen).to(dev),
        "index": torch.arange(batch_size, device=dev),
        "landmarks": (torch.rand(batch_size, 68, 2, generator=gen) * size).to(dev),
        "epoch": 0,
    }

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss, _ = model.loss(model(batch), batch)
        loss.backward()
        opt.step()

    step()  # warm-up (allocations, cudnn autotune)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return batch_size * steps / (time.perf_counter() - start)


def _finished_dirs(runs_dir: Path) -> set[str]:
    from lldif_bench.reports.runs import read_leaderboard

    try:
        board = read_leaderboard(runs_dir)
    except UserError:
        return set()
    return {Path(d).name for d in board.run_dir if d}


def _status(runs_dir: Path, name: str, finished: set[str]) -> str:
    if name in finished or (runs_dir / name / "results.json").is_file():
        return "done"
    return "partial" if (runs_dir / name).is_dir() else "todo"


VARIANT_CONFIG_DIR = "reproduce-configs"


def variant_config_path(runs_dir: Path, variant: str, base: str | Path | None = None) -> Path:
    """The run-config YAML that selects an LLDif variant (``method_options: {variant: V1}``), on top of
    the ``base`` run config when one is given (``lldif-<base>-<variant>.yaml``)."""
    stem = f"lldif-{Path(base).stem}-{variant}" if base else f"lldif-{variant}"
    return runs_dir / VARIANT_CONFIG_DIR / f"{stem}.yaml"


def write_variant_config(runs_dir: Path, variant: str, base: str | Path | None = None) -> Path:
    """Write the variant's run config: ``base``'s values (e.g. the `cpu` preset's) with the variant set."""
    import yaml

    from lldif_bench.imageio import atomic_write_bytes
    from lldif_bench.training.config import load_yaml

    values = dict(load_yaml(base)) if base else {}
    values["method_options"] = {**(values.get("method_options") or {}), "variant": variant}
    path = variant_config_path(runs_dir, variant, base)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, yaml.safe_dump(values, sort_keys=False).encode())
    return path


def _command(run: PlannedRun, runs_dir: Path, device: str | None, extra: list[str]) -> list[str]:
    cmd = ["lldif-bench"] + (["--device", device] if device else []) + [
        "run", "--method", run.method, "--data", run.data_dir or f"<{run.dataset} {run.condition} dir>",
        "--seed", str(run.seed), "--out", str(runs_dir), "--name", run.run_name]
    if run.variant:  # the harness selects LLDif variants through its config file (method_options)
        cmd += ["--config", str(variant_config_path(runs_dir, run.variant, run.base_config or None))]
    elif run.base_config:
        cmd += ["--config", run.base_config]
    if run.status == "partial":
        cmd.append("--resume")
    return cmd + list(extra)


THROUGHPUT_CACHE = "throughput.json"


def _throughput_key(method: str, variant: str, device: str, batch: int) -> str:
    return f"{method}|{variant}|{device}|b{batch}"


def load_throughput_cache(runs_dir: Path) -> dict[str, dict]:
    path = runs_dir / THROUGHPUT_CACHE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        log.warning("ignoring unreadable %s (it will be rewritten)", path)
        return {}


def save_throughput_cache(runs_dir: Path, cache: dict[str, dict]) -> None:
    from lldif_bench.imageio import atomic_write_bytes

    runs_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(runs_dir / THROUGHPUT_CACHE, json.dumps(cache, indent=1, sort_keys=True).encode())


def _measured_rate(method: str, variant: str, runs_dir: Path, cache: dict[str, dict], device: str,
                   batch: int, run_config: dict | None = None, config_name: str = "") -> float | None:
    """img/s from the cache, else measured now and cached; ``None`` when it cannot be measured."""
    ckey = _throughput_key(method, variant, device, batch) + (f"|{config_name}" if config_name else "")
    if ckey not in cache:
        log.warning("measuring training throughput of %s%s on %s (cached in %s)", method,
                    f" {variant}" if variant else "", device, runs_dir / THROUGHPUT_CACHE)
        try:
            rate = measure_train_throughput(method, variant, device, batch, run_config=run_config)
        except (UserError, RuntimeError, ImportError) as err:  # e.g. a missing optional encoder, OOM
            log.warning("could not measure %s: %s (its cost stays unestimated)", method, err)
            return None
        cache[ckey] = {"img_per_s": rate, "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
        save_throughput_cache(runs_dir, cache)
    return float(cache[ckey]["img_per_s"])


def plan_table(number: int, data: dict[str, Path], runs_dir: Path, seeds: list[int],
               device: str | None = None, extra_args: list[str] | None = None, measure: bool = True,
               throughput_device: str = "cpu", throughput_batch: int = 8,
               throughput: dict[tuple[str, str], float] | None = None,
               lldif_config: str | Path | None = None) -> list[PlannedRun]:
    """Every run Table ``number`` needs, with status, command and cost estimate.

    ``lldif_config`` (a shipped LLDif run config such as ``cpu``, or a YAML file) is the run config of
    every LLDif run; Table 5's variants are written as that config plus the variant.

    ``throughput`` gives img/s per (method, variant) directly; otherwise, with ``measure``, each is
    measured once per device and batch and cached in ``runs_dir/throughput.json``.
    """
    spec = get_table(number)
    finished = _finished_dirs(runs_dir)
    base = lldif_run_config(lldif_config)
    base_values: dict = {}
    if base is not None:
        from lldif_bench.training.config import load_yaml

        base_values = load_yaml(base)
    counts: dict[str, tuple[int | None, str]] = {}
    for dataset in spec.datasets:
        if dataset in data:
            counts[dataset] = (count_train_images(data[dataset]), "counted")
        else:
            counts[dataset] = (PAPER_TRAIN_IMAGES.get(dataset), "paper")
    speed: dict[tuple[str, str], float | None] = dict(throughput or {})
    cache = load_throughput_cache(runs_dir) if measure and throughput is None else {}
    plan = []
    for cell in spec.cells():
        key = (cell.method, cell.variant)
        if measure and key not in speed:
            on_base = base is not None and cell.method == "lldif"
            speed[key] = _measured_rate(cell.method, cell.variant, runs_dir, cache, throughput_device,
                                        throughput_batch, base_values if on_base else None,
                                        str(base) if on_base else "")
        for seed in seeds:
            name = run_name(cell.method, cell.variant, cell.dataset, cell.condition, seed)
            images, source = counts[cell.dataset]
            lldif_base = base if cell.method == "lldif" else None
            epochs = method_epochs(cell.method, cell.variant, run_config=base_values if lldif_base else None)
            run = PlannedRun(spec.number, cell.method, cell.variant, cell.dataset, cell.condition, seed,
                             str(data.get(cell.dataset, "")), name, epochs, images, source,
                             _status(runs_dir, name, finished), speed.get(key),
                             base_config=str(lldif_base) if lldif_base else "")
            if run.img_per_s and run.train_images:
                run.est_seconds = run.train_images * run.epochs / run.img_per_s
            run.command = _command(run, runs_dir, device, extra_args or [])
            plan.append(run)
    return plan


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "unmeasured"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def format_plan(plan: list[PlannedRun], throughput_device: str | None) -> str:
    """A readable plan: one line per run, its command, then the total remaining cost."""
    lines = []
    for run in plan:
        label = f"{run.method}{'-' + run.variant if run.variant else ''}"
        imgs = f"{run.train_images} ({run.images_source})" if run.train_images else "unknown"
        rate = f"{run.img_per_s:.3g} img/s" if run.img_per_s else "img/s unmeasured"
        lines.append(f"[{run.status:<7}] Table {run.table}  {label:<10} {run.dataset:<8} {run.condition:<9} "
                     f"s{run.seed}  {imgs} imgs × {run.epochs} ep ÷ {rate} = {_hours(run.est_seconds)}")
        if run.status != "done":
            lines.append(f"          {run.command_line()}")
            if run.variant:
                on = f"{run.base_config}'s settings and " if run.base_config else ""
                lines.append(f"          (the --config file holds {on}'method_options: {{variant: {run.variant}}}'; "
                             "written when the plan runs)")
    todo = [r for r in plan if r.status != "done"]
    known = [r.est_seconds for r in todo if r.est_seconds is not None]
    lines.append(f"{len(plan)} runs: {sum(r.status == 'done' for r in plan)} done, "
                 f"{sum(r.status == 'partial' for r in plan)} to resume, {sum(r.status == 'todo' for r in plan)} to "
                 f"start; estimated remaining {_hours(sum(known)) if known else 'unmeasured'} "
                 + (f"(throughput measured on {throughput_device}; images × epochs ÷ img/s, training only)"
                    if throughput_device else "(throughput not measured: --no-measure)")
                 + ("" if len(known) == len(todo) else f"; {len(todo) - len(known)} run(s) without an estimate"))
    return "\n".join(lines)


def save_plan(plan: list[PlannedRun], path: Path) -> Path:
    from lldif_bench.imageio import atomic_write_bytes

    atomic_write_bytes(path, json.dumps([asdict(r) for r in plan], indent=1).encode())
    return path


BRANCH_NOTE = "branched_from.json"


def _lldif_config(run: PlannedRun):
    from lldif_bench.models.lldif.builder import config_from_options
    from lldif_bench.training.config import load_yaml

    values = load_yaml(run.base_config) if run.base_config else {}
    options = dict(values.get("method_options") or {})
    if run.variant:
        options["variant"] = run.variant
    if values.get("image_size"):
        options["image_size"] = values["image_size"]
    return config_from_options(options)


def copy_finished_stages(donor: Path, target: Path, stages: tuple[str, ...]) -> None:
    """Create run folder ``target`` holding ``donor``'s checkpoints of ``stages`` (whole or not at all)
    and ``branched_from.json``; ``lldif-bench run --resume`` on it then trains only the later stages."""
    import shutil

    tmp = target.parent / f".{target.name}.branch"
    shutil.rmtree(tmp, ignore_errors=True)
    for stage in stages:
        shutil.copytree(donor / "checkpoints" / stage, tmp / "checkpoints" / stage)
    (tmp / BRANCH_NOTE).write_text(json.dumps({"run": donor.name, "stages": list(stages)}, indent=1))
    tmp.rename(target)


def branch_from_sibling(run: PlannedRun, plan: list[PlannedRun], runs_dir: Path) -> tuple[str, ...]:
    """Before an LLDif variant run starts: copy the stages it computes identically to a finished sibling
    run (another variant on the same data, seed and base config; :func:`shared_stages`) into its folder,
    so ``--resume`` trains only the rest. Table 5's V2-V4 share stages 0-1 (V2/V4 also 2a). Returns the
    stages copied; the folder appears whole or not at all, with ``branched_from.json`` saying from where."""
    from lldif_bench.models.lldif.config import shared_stages

    target = runs_dir / run.run_name
    if run.method != "lldif" or not run.variant or target.exists():
        return ()
    mine = _lldif_config(run)
    best: tuple[str, ...] = ()
    donor = None
    for other in plan:
        same_cell = (other.dataset, other.condition, other.seed, other.data_dir, other.base_config) == (
            run.dataset, run.condition, run.seed, run.data_dir, run.base_config)
        if other is run or other.method != "lldif" or not same_cell:
            continue
        if not (runs_dir / other.run_name / "results.json").is_file():
            continue
        shared = tuple(s for s in shared_stages(mine, _lldif_config(other)) if s != "2b")
        if len(shared) > len(best):
            best, donor = shared, other
    if donor is None:
        return ()
    copy_finished_stages(runs_dir / donor.run_name, target, best)
    log.warning("reproduce: %s starts from %s's finished stages %s", run.run_name, donor.run_name, ", ".join(best))
    run.status = "partial"
    if "--resume" not in run.command:
        run.command.append("--resume")
    return best


def execute_plan(plan: list[PlannedRun], runs_dir: Path, table: int, aggregate: str = "mean") -> list[Path]:
    """Run every planned run that is not done through ``lldif-bench run`` (in this process), each
    resumed when partial (LLDif variants first take the stages they share with a finished sibling,
    :func:`branch_from_sibling`), then write ``runs_dir/table<N>.md`` and ``.csv``. Returns the paths written."""
    import click

    from lldif_bench.cli.main import main
    from lldif_bench.imageio import atomic_write_bytes
    from lldif_bench.reports.runs import read_leaderboard
    from lldif_bench.reports.tables import build_table, to_csv, to_markdown

    for run in plan:
        if run.status == "done":
            continue
        if not run.data_dir:
            raise UserError(f"no data folder for {run.dataset} ({run.run_name}); pass --data")
        if run.variant:
            write_variant_config(runs_dir, run.variant, run.base_config or None)
            branch_from_sibling(run, plan, runs_dir)
        log.warning("reproduce: %s %s", "resuming" if run.status == "partial" else "starting", run.command_line())
        try:
            main.main(args=run.command[1:], prog_name="lldif-bench", standalone_mode=False)
        except click.ClickException as err:
            raise UserError(f"run {run.run_name} failed: {err.format_message()}") from None
        if not (runs_dir / run.run_name / "results.json").is_file():
            raise UserError(f"run {run.run_name} ended without {runs_dir / run.run_name / 'results.json'}")
        run.status = "done"
    frame = build_table(get_table(table), read_leaderboard(runs_dir), aggregate)  # type: ignore[arg-type]
    md, csv = runs_dir / f"table{table}.md", runs_dir / f"table{table}.csv"
    atomic_write_bytes(md, to_markdown(frame, numbers=[table]).encode())
    atomic_write_bytes(csv, to_csv(frame).encode())
    return [md, csv]
