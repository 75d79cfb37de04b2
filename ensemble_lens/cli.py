"""Command line: parse -> config -> pipeline. No logic of its own."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import EnsembleLensError

if TYPE_CHECKING:
    from .pipeline.runner import Stage

_STAGE_COMMANDS: dict[str, tuple[Stage, ...] | None] = {
    "run": None,
    "train": ("probe", "train"),
    "record": ("probe", "record"),
    "compare": ("compare",),
    "consensus": ("consensus",),
    "distill": ("distill",),
    "templates": ("templates",),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ensemble-lens",
        description="Train or ingest an ensemble, record its latents into a Zarr study store, "
        "compare, align, find the consensus and distill it into formulas.",
    )
    p.add_argument("--version", action="version", version=f"ensemble-lens {__version__}")
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)"
    )
    sub = p.add_subparsers(dest="command", required=True)
    helps = {
        "run": "run a whole study (train, record, compare, consensus, distill, report)",
        "train": "train the config's ensemble and record each member's latents",
        "record": "ingest and record the models listed under ensemble.ingest",
        "compare": "compute the all-pairs similarity matrices",
        "consensus": "align the members and find the consensus components",
        "distill": "symbolic regression on the consensus components",
        "templates": "shared formula templates and groups of members (templates:, groups:)",
    }
    for name, text in helps.items():
        sp = sub.add_parser(name, help=text, description=text)
        sp.add_argument("config", help="study config (YAML)")
        sp.add_argument("--store", help="study store path (default: from the config)")
        sp.add_argument(
            "--scheduler",
            help="'local' (LocalCluster, default), 'serial', 'jobqueue' or tcp://host:8786",
        )
        sp.add_argument("--workers", type=int, help="worker processes (local) or jobs (jobqueue)")
        sp.add_argument("--profile", help="execution profile YAML (configs/profiles/*.yaml)")
    sp = sub.add_parser("inspect", help="summarise a study store")
    sp.add_argument("store", help="study store path")
    sp = sub.add_parser("report", help="(re)build report.html and results.json of a store")
    sp.add_argument("store", help="study store path")
    sp.add_argument("--out", help="directory for report.html and results.json")
    return p


def _configure_logging(verbose: int) -> None:
    from rich.logging import RichHandler

    level = logging.WARNING if verbose < 0 else (logging.INFO if verbose <= 1 else logging.DEBUG)
    handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler], force=True)
    logging.getLogger("ensemble_lens").setLevel(level)
    quiet = logging.DEBUG if verbose > 1 else logging.ERROR  # dask's start/stop chatter
    for name in ("distributed", "dask", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(quiet)


def _run(args: argparse.Namespace) -> int:
    from .config import load_config, with_profile
    from .pipeline.runner import run_study

    cfg = load_config(args.config)
    if args.profile:
        cfg = with_profile(cfg, args.profile)
    updates: dict[str, Any] = {}
    if args.scheduler:
        updates["scheduler"] = args.scheduler
    if args.workers:
        updates["workers"] = args.workers
    if updates:
        cfg = cfg.model_copy(update={"execution": cfg.execution.model_copy(update=updates)})
    from .pipeline.progress import console_progress

    with console_progress() as progress:
        result = run_study(
            cfg, store=args.store, stages=_STAGE_COMMANDS[args.command], progress=progress
        )
    from .pipeline.progress import print_summary

    print_summary(result)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .record.store import open_store
    from .record.summary import store_renderables

    console = Console()
    store = open_store(args.store, mode="r")
    from .report.terminal import summary_renderables

    renderables = store_renderables(store)
    if store.result_layers("similarity") or store.read_formulas():
        renderables += summary_renderables(store, models=False)
    for renderable in renderables:
        console.print(renderable)
    return 0


def _report(args: argparse.Namespace) -> int:
    from .record.store import open_store
    from .report import build_report

    paths = build_report(open_store(args.store, mode="r"), out_dir=args.out)
    print(f"wrote {paths.html} and {paths.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ensemble-lens`` console script."""
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose + 1)
    try:
        if args.command == "inspect":
            return _inspect(args)
        if args.command == "report":
            return _report(args)
        return _run(args)
    except EnsembleLensError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
