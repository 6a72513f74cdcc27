"""Command line for teachers and checks:
`python -m engine sweep|lesson|pack build|pretrain|predict|fetch-weights|download|lora-params ...`.

Every failure a user can cause (unknown dataset, strategy or backbone, too many labels per
class, zero seeds, an unwritable output file) ends with a one-line message on stderr and exit
status 2, never a traceback. Ctrl-C stops a sweep; the runs finished so far stay stored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

from engine.core.datasets import labels_list_text, parse_labels_list
from engine.core.device import describe_device, pick_device
from engine.core.imagenet import WeightsUnavailable
from engine.core.pretrain import PretrainConfig, pretrain
from engine.core.store import ResultStore
from engine.core.text import is_text_dataset
from engine.experiments.protocol import Progress
from engine.experiments.readings.curves import sweep_readings
from engine.experiments.stats import RULE, failed_note, summarize
from engine.experiments.sweep import DEFAULT_LABELS, SweepSpec, run_sweep
from engine.infra.ray_backend import RayError

CSV_COLUMNS = ["strategy", "labels_per_class", "seed", "test_accuracy", "train_seconds", "device",
               "n_train", "all_labels", "steps", "backbone", "source", "target", "code_version", "run_key"]


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit status 2."""


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_labels(text: str) -> tuple[int, ...]:
    try:
        return parse_labels_list(text)
    except ValueError as err:
        raise UsageError(str(err).replace("e.g. 1,", "e.g. --labels 1,")) from None


def parse_device(text: str) -> torch.device:
    if text == "auto":
        return pick_device()
    if text == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but no CUDA device is available")
    if text not in ("cpu", "cuda", "mps"):
        raise UsageError(f"unknown device '{text}'; use auto, cpu, cuda or mps")
    return torch.device(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Transfer Lab's engine.")
    sub = parser.add_subparsers(dest="command", required=True)

    sweep = sub.add_parser("sweep", help="train strategies at several labelled-set sizes and seeds")
    sweep.add_argument("--source", default="mnist5k", help="dataset the backbone is pretrained on")
    sweep.add_argument("--target", default="uci_digits",
                       help="dataset the strategies are compared on (a text corpus too: "
                            "movie_reviews, amazon_reviews, tweets, nyt_editorials, sms_spam, "
                            "trec_questions, or text:<id> of sentences uploaded on the page)")
    sweep.add_argument("--backbone", default="small_cnn")
    sweep.add_argument("--strategies", default="scratch,probe,finetune",
                       help="comma-separated (a text target: scratch, probe, lora, lora:r<rank>, "
                            "finetune)")
    sweep.add_argument("--labels", default=labels_list_text(DEFAULT_LABELS),
                       help="labels per class, comma-separated; 'all' uses every training label")
    sweep.add_argument("--seeds", type=int, default=3, help="runs per point (seeds 0..N-1)")
    sweep.add_argument("--out", help="write every run of the sweep to this CSV file")
    sweep.add_argument("--store", help="result store file (default: results.sqlite in TRANSFERLAB_HOME)")
    sweep.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.add_argument("--ray", metavar="ADDRESS", help="train the runs as tasks on a Ray cluster "
                                                        "(auto, or the head's HOST:PORT)")

    lesson = sub.add_parser("lesson", help="run a lesson's sections as its page does and print "
                                           "their readings")
    from engine.experiments.lessons.catalog import LESSONS

    names = [name.replace("_", "-") for name in LESSONS]
    lesson.add_argument("name", help=", ".join(names[:-1]) + " or " + names[-1])
    lesson.add_argument("--section", action="append", help="run only this section (repeatable); "
                                                           "default: every section of the lesson")
    lesson.add_argument("--seeds", type=int, help="seeds per point of every section that has seeds")
    lesson.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a link parameter of the page, e.g. --set labels=1,5 --set size=224; "
                             "a value the page would refuse is an error here")
    lesson.add_argument("--store", help="result store file (default: results.sqlite in TRANSFERLAB_HOME)")
    lesson.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    lesson.add_argument("--list", action="store_true", help="list the sections and their settings; "
                                                          "train nothing")
    lesson.add_argument("--no-progress", action="store_true", help="no progress bar")

    pack = sub.add_parser("pack", help="lesson packs: precomputed results shipped with the app")
    pack_sub = pack.add_subparsers(dest="pack_command", required=True)
    build = pack_sub.add_parser("build", help="run a lesson's sweeps and write its pack")
    build.add_argument("lesson", help="a lesson file, e.g. assets/lessons/default.yaml")
    build.add_argument("--out-dir", help="where to write the pack (default: assets/packs)")
    build.add_argument("--no-progress", action="store_true")
    build.add_argument("--ray", metavar="ADDRESS", help="run the sweeps on a Ray cluster (auto or HOST:PORT)")
    sections = pack_sub.add_parser("sections", help="run every lesson section at its default "
                                   "settings and write assets/packs/sections.json")
    sections.add_argument("--out-dir", help="where to write the pack (default: assets/packs)")
    sections.add_argument("--no-progress", action="store_true")
    sections.add_argument("--only", help="comma-separated lessons: run just these and add their "
                                         "units to the pack already there")

    pre = sub.add_parser("pretrain", help="pretrain a backbone on a source dataset (cached)")
    pre.add_argument("--source", default="mnist5k")
    pre.add_argument("--backbone", default="small_cnn")
    pre.add_argument("--epochs", type=int, default=PretrainConfig.epochs)
    pre.add_argument("--device", default="auto")

    pred = sub.add_parser("predict", help="top ImageNet classes of an image: is the backbone what "
                                          "it claims to be?")
    pred.add_argument("--backbone", default="efficientnet_lite0", help="an ImageNet backbone")
    pred.add_argument("--image", required=True, help="an image file (PNG, JPEG, ...)")
    pred.add_argument("--top", type=int, default=5, help="how many classes to print")

    fetch = sub.add_parser("fetch-weights", help="download a torchvision backbone's ImageNet "
                                                 "weights into the data directory")
    fetch.add_argument("backbone", help="resnet18, resnet50, mobilenet_v3_small or efficientnet_b0")
    fetch.add_argument("--file", help="a weights file downloaded by hand: checked, then installed")

    lora = sub.add_parser("lora-params", help="exact LoRA parameter counts of an architecture: "
                                              "prints {trainable, total, percent} as JSON")
    lora.add_argument("--preset", required=True, help="gpt3-175b, llama-2-7b, gpt2, bert-base-"
                                                      "uncased, resnet18, small-cnn, ...")
    lora.add_argument("--rank", type=int, required=True, help="r: A is (r, d_in), B is (d_out, r)")
    lora.add_argument("--targets", required=True, help="module names, comma-separated, matched "
                                                       "as peft matches them, e.g. q_proj,v_proj")
    lora.add_argument("--alpha", type=float, help="scales the update by alpha/r; changes no count")

    down = sub.add_parser("download", help="download a dataset into the data directory")
    down.add_argument("dataset", help="e.g. fashion_mnist, cifar10, svhn, dermamnist, pneumoniamnist")
    down.add_argument("--no-progress", action="store_true")
    return parser


def progress_printer(enabled: bool):
    """An on_progress callback drawing one tqdm bar per stage (pretraining, runs) on stderr."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def on_progress(event: Progress) -> None:
        if not enabled:
            return
        bar = bars.get(event.stage)
        if bar is None:
            for other in bars.values():  # a new stage: the previous one is over
                other.close()
            unit = "step" if event.stage == "pretrain" else "run"
            bar = bars[event.stage] = tqdm(total=event.total, unit=unit, desc=event.stage, file=sys.stderr)
        bar.n = event.done
        bar.set_postfix_str(event.message[:60])
        bar.refresh()

    on_progress.close = lambda: [bar.close() for bar in bars.values()]
    return on_progress


def cmd_sweep(args: argparse.Namespace) -> int:
    if is_text_dataset(args.target):
        return text_sweep(args)
    spec = SweepSpec(source=args.source, target=args.target, backbone=args.backbone,
                     strategies=tuple(_split(args.strategies)), labels_per_class=parse_labels(args.labels),
                     seeds=args.seeds)
    spec.check_target_capacity()
    device = parse_device(args.device)
    if args.out:
        out_dir = Path(args.out).resolve().parent
        if not out_dir.is_dir():
            raise UsageError(f"cannot write {args.out}: folder {out_dir} does not exist")
    store = ResultStore(args.store) if args.store else ResultStore()
    on_progress = progress_printer(not args.no_progress)

    print(f"device: {describe_device(device)}", file=sys.stderr)
    try:
        if args.ray:
            from engine.infra.ray_backend import run_sweep_on_ray

            result = run_sweep_on_ray(spec, store, args.ray, on_progress)
        else:
            result = run_sweep(spec, store, device=device, on_progress=on_progress)
    except KeyboardInterrupt:
        print("cancelled: every finished run is kept in the store", file=sys.stderr)
        return 130
    finally:
        on_progress.close()
    records = result.records
    if args.out:
        try:
            records[[c for c in CSV_COLUMNS if c in records.columns]].to_csv(args.out, index=False)
        except OSError as err:
            raise UsageError(f"cannot write {args.out}: {err.strerror or err}") from None
    if result.pretrain is not None:
        p = result.pretrain
        how = "loaded from cache" if p.cached else f"trained in {p.seconds:.1f} s"
        print(f"pretrained {spec.backbone} on {spec.source}: source accuracy {p.source_accuracy:.1f}% ({how})")
    print(f"runs: {result.trained} trained, {result.reused} reused from the store")
    summary = summarize(records)
    summary["order"] = summary["strategy"].map(spec.strategies.index)
    for _, row in summary.sort_values(["order", "size"]).iterrows():
        print(f"  {row['strategy']:>9}  {str(row['size']):>9} labels/class"
              f"  {row['mean']:5.1f}% ± {row['std']:4.1f}  ({row['seeds']} seed{'s' if row['seeds'] != 1 else ''})")
    note = failed_note(records)
    if note:
        print("failed: " + note)
    print_readings(sweep_readings(records))
    if args.out:
        print(f"wrote {len(records)} runs to {args.out}")
    return 0


def text_sweep(args: argparse.Namespace) -> int:
    """`sweep` on a text target: words from scratch against a probe on a frozen sentence
    encoder (`engine.experiments.text_sweep`); printed as an image sweep is."""
    from engine.core.store import records_frame
    from engine.experiments.protocol import run_experiment
    from engine.experiments.text_sweep import TextSweepSpec, lora_rank, majority_baseline

    if args.source != "mnist5k" or args.backbone != "small_cnn":
        raise UsageError("a text target takes no --source or --backbone: its probe reads the "
                         "MiniLM sentence encoder")
    spec = TextSweepSpec(target=args.target, strategies=tuple(_split(args.strategies)),
                         labels_per_class=parse_labels(args.labels), seeds=args.seeds)
    spec.check()
    store = ResultStore(args.store) if args.store else ResultStore()
    on_progress = progress_printer(not args.no_progress)
    try:
        if args.ray:  # every run a task on the cluster, as an image sweep's
            from engine.infra.ray_backend import RayBackend, run_on_ray

            outcome = run_on_ray(spec, store, RayBackend(args.ray), on_progress=on_progress)
        else:
            outcome = run_experiment(spec, store, on_progress=on_progress)
    except KeyboardInterrupt:
        print("cancelled: every finished run is kept in the store", file=sys.stderr)
        return 130
    finally:
        on_progress.close()
    records = records_frame(store.get_many(u.key for u in spec.units()))
    if args.out:
        try:
            records[[c for c in CSV_COLUMNS if c in records.columns]].to_csv(args.out, index=False)
        except OSError as err:
            raise UsageError(f"cannot write {args.out}: {err.strerror or err}") from None
    print(f"runs: {outcome.trained} trained, {outcome.reused} reused from the store")
    print(f"majority class (always answer the commoner side): {majority_baseline(spec.target):.1f}%")
    summary = summarize(records)
    summary["order"] = summary["strategy"].map(spec.strategies.index)
    names = {"scratch": "scratch (TF-IDF words)", "probe": f"probe ({spec.encoder})",
             "finetune": f"fine-tune ({spec.encoder})"}
    for _, row in summary.sort_values(["order", "size"]).iterrows():
        rank = lora_rank(row["strategy"])
        name = names.get(row["strategy"]) or f"LoRA r{rank} ({spec.encoder})"
        print(f"  {name:>22}  {str(row['size']):>9} "
              f"labels/class  {row['mean']:5.1f}% ± {row['std']:4.1f}  ({row['seeds']} "
              f"seed{'s' if row['seeds'] != 1 else ''})")
    print_readings(sweep_readings(records))
    if args.out:
        print(f"wrote {len(records)} runs to {args.out}")
    return 0


def print_readings(readings) -> None:
    """The readings, one sentence a line under the rule's summary; then, where gaps of a point
    or more were left uncalled with enough seeds a side, the note that says so
    (`uncalled_note`) and the option that adds seeds (the rule is not loosened: only more runs
    help)."""
    from engine.experiments.readings.common import uncalled_note

    if readings:
        print("readings (" + RULE.split(": ", 1)[1].split(".")[0] + "):")
    for sentence in readings:
        print("  " + sentence.text.replace("**", "").replace("#### ", ""))
    note = uncalled_note(readings)
    if note:
        print(f"{note.rstrip('.')} (--seeds).")


def lesson_settings(cls: type, params: dict[str, str], seeds: Optional[int]):
    """A section's settings from link parameters, as its page reads them; a value the page
    would replace by its default (with a notice) is a UsageError here. `seeds`: every
    `seeds` field set to it (also inside a section that follows another's settings)."""
    settings, notices = cls.from_query(params)
    if notices:
        raise UsageError("; ".join(notices))
    if seeds is not None:
        settings = with_seeds(settings, seeds)
    return settings


def with_seeds(settings, seeds: int):
    """`settings` with `seeds` seeds per point, in it and in the settings it holds."""
    import dataclasses

    changes = {f.name: (seeds if f.name == "seeds" else with_seeds(getattr(settings, f.name), seeds))
               for f in dataclasses.fields(settings)
               if f.name == "seeds" or dataclasses.is_dataclass(getattr(settings, f.name))}
    return dataclasses.replace(settings, **changes) if changes else settings


def cmd_lesson(args: argparse.Namespace) -> int:
    from engine.experiments.lessons.catalog import LESSONS, lesson_name
    from engine.experiments.protocol import run_experiment

    lesson = lesson_name(args.name)
    sections = LESSONS[lesson]
    chosen = [s.replace("-", "_") for s in (args.section or sections)]
    unknown = [s for s in chosen if s not in sections]
    if unknown:
        raise UsageError(f"{args.name} has no section {unknown[0]!r}; its sections are "
                         f"{', '.join(n.replace('_', '-') for n in sections)}")
    params = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set takes KEY=VALUE, got {item!r}")
        params[key.strip()] = value.strip()
    known = {k for cls in sections.values() for k in cls.PARAMS}
    stray = sorted(set(params) - known)
    if stray:
        raise UsageError(f"{args.name} reads no link parameter {stray[0]!r}; it reads "
                         f"{', '.join(sorted(known))}")
    settings = {name: lesson_settings(sections[name], params, args.seeds) for name in chosen}
    if args.list:
        for name, s in settings.items():
            print(f"{name.replace('_', '-')}: {s.to_query()} -> experiment {s.experiment().key()}")
        return 0
    for s in settings.values():
        s.experiment().check()  # a target too small for a size: before anything trains
    device = parse_device(args.device)
    store = ResultStore(args.store) if args.store else ResultStore()
    print(f"device: {describe_device(device)}", file=sys.stderr)
    for name, section in settings.items():
        print(f"== {lesson.replace('_', '-')} / {name.replace('_', '-')}: {section.to_query()}")
        on_progress = progress_printer(not args.no_progress)
        try:
            outcome = run_experiment(section.experiment(), store, device=device,
                                     on_progress=on_progress)
        except KeyboardInterrupt:
            print("cancelled: everything finished so far is kept in the store", file=sys.stderr)
            return 130
        finally:
            on_progress.close()
        print(f"units: {outcome.trained} trained, {outcome.reused} reused from the store")
        print_readings(section.readings(store))
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from engine.infra.packs import PACKS_DIR, build_pack, build_sections_pack

    on_progress = progress_printer(not args.no_progress)
    try:
        if args.pack_command == "sections":
            path = build_sections_pack(out=Path(args.out_dir or PACKS_DIR) / "sections.json",
                                       on_progress=on_progress,
                                       only=set(_split(args.only)) if args.only else None)
        else:
            path = build_pack(args.lesson, args.out_dir or PACKS_DIR, on_progress=on_progress,
                              ray_address=args.ray)
    except KeyboardInterrupt:
        print("cancelled: every finished run is kept in the store; the pack was not written", file=sys.stderr)
        return 130
    finally:
        on_progress.close()
    print(f"wrote {path}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    config = PretrainConfig(backbone=args.backbone, source=args.source, epochs=args.epochs)
    result = pretrain(config, device=parse_device(args.device))
    how = "loaded from cache" if result.cached else f"trained in {result.seconds:.1f} s on {result.device}"
    print(f"{config.backbone} on {config.source}: source accuracy {result.source_accuracy:.1f}% ({how})")
    print(f"checkpoint: {result.checkpoint}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from engine.core.imagenet import get_imagenet_model, load_image, predict, weights_path, weights_status

    info = get_imagenet_model(args.backbone)
    if weights_path(args.backbone) is None:
        raise WeightsUnavailable(f"{info.title}: {weights_status(args.backbone)[1]}")
    if not 1 <= args.top <= 1000:
        raise UsageError(f"--top must be between 1 and 1000, got {args.top}")
    if not Path(args.image).is_file():
        raise UsageError(f"no image file at {args.image}")
    image = load_image(args.image)  # (3, H, W)
    print(f"{info.title} on {args.image} ({image.shape[2]}x{image.shape[1]} pixels):")
    for rank, (label, prob) in enumerate(predict(args.backbone, image, args.top), start=1):
        print(f"  {rank}. {label:<30} {prob * 100:5.1f}%")
    return 0


def cmd_fetch_weights(args: argparse.Namespace) -> int:
    from engine.core.imagenet import fetch_weights, get_imagenet_model, install_weights_file

    get_imagenet_model(args.backbone)
    if args.file:
        if not Path(args.file).is_file():
            raise UsageError(f"no file at {args.file}")
        path = install_weights_file(args.backbone, Path(args.file))
    else:
        path = fetch_weights(args.backbone)
    print(f"{args.backbone}: weights at {path}")
    return 0


def cmd_lora_params(args: argparse.Namespace) -> int:
    import json
    import math

    from engine.experiments.lora_presets import count_preset

    if args.alpha is not None and not (math.isfinite(args.alpha) and args.alpha > 0):
        raise UsageError(f"--alpha must be a positive number, got {args.alpha}")
    count = count_preset(args.preset, args.rank, _split(args.targets))
    print(json.dumps({"trainable": count.trainable, "total": count.total, "percent": count.percent}))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.core.remote import describe_status, download, get_remote

    info = get_remote(args.dataset)
    bar = None

    def on_progress(done: int, total: int) -> None:
        nonlocal bar
        if args.no_progress:
            return
        if bar is None:
            big = total > 1000  # bytes (MedMNIST) or files (torchvision)
            bar = tqdm(total=total or None, unit="B" if big else "file", unit_scale=big,
                       desc=args.dataset, file=sys.stderr)
        bar.update(done - bar.n)

    try:
        path = download(args.dataset, on_progress=on_progress)
    finally:
        if bar is not None:
            bar.close()
    print(f"{info.title}: {describe_status(args.dataset)} in {path}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        commands = {"sweep": cmd_sweep, "lesson": cmd_lesson, "pack": cmd_pack, "pretrain": cmd_pretrain,
                    "predict": cmd_predict, "fetch-weights": cmd_fetch_weights,
                    "download": cmd_download, "lora-params": cmd_lora_params}
        return commands[args.command](args)
    except (UsageError, ValueError, WeightsUnavailable, RayError) as err:  # DatasetError, StrategyError,
        # ... are ValueErrors; WeightsUnavailable says which file is missing and how to get it
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
