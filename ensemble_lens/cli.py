"""Command line: parse -> config -> pipeline. No logic of its own."""

from __future__ import annotations

import argparse
import difflib
import errno
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import ConfigError, EnsembleLensError, StoreError, StoreLockedError

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
    _add_common(p, 0)
    sub = p.add_subparsers(dest="command", required=True)
    helps = {
        "run": "run a whole study (train or ingest, record, compare, consensus, distill, "
        "templates, report)",
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
        _add_run_flags(sp)
        _add_common(sp, argparse.SUPPRESS)
    sp = sub.add_parser(
        "inspect",
        help="summarise a study store",
        description="Summarise a study store: its members, layers, shapes and status, the probe "
        "variables and schema, and for a finished study its findings and formulas. Reads only; "
        "works on a read-only copy and while another run holds the store.",
    )
    sp.add_argument("store", help="study store path")
    sp.add_argument(
        "--verify",
        action="store_true",
        help="check every part of the store (metadata, chunks, content digests) and list "
        "what is damaged with the command that repairs it (exit 1 if any)",
    )
    sp.add_argument(
        "--results",
        action="store_true",
        help="with --verify: recompute a sample of the stored results from the stored "
        "activations and say whether they agree (exit 1 if not)",
    )
    sp.add_argument("--scheduler", help="executor for --verify (default: serial below 1 GB)")
    sp.add_argument("--workers", type=int, help="worker processes for --verify")
    _add_common(sp, argparse.SUPPRESS)
    sp = sub.add_parser(
        "report",
        help="(re)build report.html and results.json of a store",
        description="Rebuild the self-contained HTML report and results.json of a study store "
        "from the store alone (read-only), in STORE.report/ beside it or in --out.",
    )
    sp.add_argument("store", help="study store path")
    _add_common(sp, argparse.SUPPRESS)
    sp.add_argument(
        "--out", help="directory for report.html and results.json (default: STORE.report/)"
    )
    sp = sub.add_parser(
        "measures",
        help="list every similarity measure name, one line each",
        description="List every similarity measure of the registry by its standard name "
        "(family-key=value-...-output), one line each with what it gives. Each name works in "
        "similarity.metrics, ensemble_lens.measure(name) and pairwise(inputs, name).",
    )
    sp.add_argument(
        "--family", help="only names starting with this (e.g. cka, rsa); none is an error"
    )
    sp.add_argument("--markdown", action="store_true", help="print docs/MEASURES.md")
    return p


def _add_common(p: argparse.ArgumentParser, default: Any) -> None:
    """-v and --debug, accepted before and after the subcommand."""
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="more log output: -v shows dask's own messages, -vv debug",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        default=default if default is argparse.SUPPRESS else False,
        help="show the full traceback of an error",
    )


def _measures(args: argparse.Namespace) -> int:
    from .similarity import measure_names
    from .similarity._registry import measures_markdown

    if args.markdown:
        print(measures_markdown(), end="")
        return 0
    names = measure_names()
    rows = [(n, d) for n, d in names if not args.family or n.startswith(args.family)]
    if not rows:
        families = sorted({_family(n) for n, _ in names})
        close = difflib.get_close_matches(args.family, families, n=3, cutoff=0.5)
        raise ConfigError(
            f"measures --family {args.family!r}: no measure name starts with it; "
            + (
                f"closest families: {', '.join(close)}"
                if close
                else "families: " + ", ".join(families)
            )
        )
    width = max((len(n) for n, _ in rows), default=0)
    for name, text in rows:
        print(f"{name:<{width}}  {text}")
    return 0


def _family(name: str) -> str:
    """``cka`` of ``cka-kernel=linear-hsic=gretton-score``; a legacy name is its own family."""
    return name.split("-", 1)[0]


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait",
        action="store_true",
        help="when another run is writing the store, wait for it instead of failing",
    )
    p.add_argument(
        "--redo",
        action="append",
        default=[],
        metavar="MODEL",
        help="rebuild this member even if stored complete (repeatable), or write a part of "
        "the store again (root, probe, similarity/LAYER, consensus/LAYER, distill), e.g. "
        "after `inspect --verify` found it damaged",
    )
    p.add_argument(
        "--add-members",
        action="store_true",
        help="let this config add members to the study in the store (its other members and "
        "probe must be the store's); without it a config with other members is refused",
    )


def _configure_logging(verbose: int) -> None:
    """ensemble_lens at INFO (DEBUG with -vv); dask, tornado and asyncio at WARNING unless -v.

    On a terminal, rich formats the lines; otherwise one plain line per record, so a log file
    reads line by line. Dask worker processes inherit the level through the environment.
    """
    dask_level = (logging.WARNING, logging.INFO)[verbose] if verbose < 2 else logging.DEBUG
    os.environ["DASK_LOGGING__DISTRIBUTED"] = logging.getLevelName(dask_level).lower()
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(
            console=Console(stderr=True), show_path=False, rich_tracebacks=False, markup=False
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("ensemble_lens").setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    for name in ("distributed", "dask", "tornado", "asyncio", "bokeh"):
        logging.getLogger(name).setLevel(dask_level)


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
            cfg,
            store=args.store,
            stages=_STAGE_COMMANDS[args.command],
            progress=progress,
            redo=args.redo,
            wait=args.wait,
            add_members=args.add_members,
        )
    from .pipeline.progress import print_summary

    print_summary(result)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .record.store import open_store
    from .record.summary import store_renderables

    console = Console()
    if args.verify:
        return _verify(args)
    if args.results:
        raise StoreError("inspect --results: expected it with --verify")
    store = open_store(args.store, mode="r")
    from .report.results import collect_results
    from .report.terminal import findings_renderables, summary_renderables

    try:
        renderables = store_renderables(store)
        results = collect_results(store)
        # the findings first, then the store's members and layers, then the evidence
        renderables = findings_renderables(results["findings"], results["formulas"]) + renderables
        if store.result_layers("similarity") or store.read_formulas():
            renderables += summary_renderables(store, models=False, findings=False, results=results)
    except (ValueError, OSError, RuntimeError) as err:  # decoder / JSON errors of a damaged store
        if isinstance(err, EnsembleLensError):
            raise
        raise StoreError(
            f"cannot summarise {store.path} ({type(err).__name__}: {err}); "
            f"`ensemble-lens inspect --verify {store.path}` lists what is damaged"
        ) from err
    for renderable in renderables:
        console.print(renderable)
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Check everything; exit 0 when all is sound, 1 with one line per damage (and, with
    ``--results``, per recomputed value that disagrees)."""
    from pathlib import Path

    from .execution import make_executor
    from .record.verify import verify_store

    path = Path(args.store)
    if not path.is_dir():
        raise StoreError(f"no study store at {path} (expected a Zarr v3 directory)")
    scheduler = args.scheduler or ("local" if _size(path) > 2**30 else "serial")
    with make_executor(scheduler, workers=args.workers) as executor:
        damage = verify_store(path, executor if scheduler != "serial" else None)
    for d in damage:
        print(f"damaged: {d.line(path)}")
    if damage:
        print(f"{len(damage)} damaged part(s) in {path}", file=sys.stderr)
        return 1
    print(
        f"verified {path}: metadata, every chunk of every array and every content digest read back"
    )
    if not args.results:
        return 0
    from .pipeline.recheck import recheck_results
    from .record.store import open_store

    checks = recheck_results(open_store(path, mode="r"))
    for c in checks:
        print(c.line())
    bad = [c for c in checks if not c.agrees]
    if bad:
        print(f"{len(bad)} of {len(checks)} rechecks disagree in {path}", file=sys.stderr)
        return 1
    print(f"{len(checks)} rechecks of stored results agree with the stored activations")
    return 0


def _size(path: Any) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .pipeline.runner import refuse_damage
    from .record.store import open_store
    from .report import build_report

    store = open_store(args.store, mode="r")
    refuse_damage(Path(args.store), ("report",), ())  # what the report describes is sound
    paths = build_report(store, out_dir=args.out)
    print(f"wrote {paths.html} and {paths.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ensemble-lens`` console script.

    Exit codes: 0 done; 1 an unexpected error (or damage found by ``inspect --verify``);
    2 bad input (config, paths, store contents); 3 the store is in use by another run;
    4 the operating system refused a write (disk full, read-only, permission); 130 interrupted.
    Every error is one line on stderr; ``--debug`` prints the traceback first.
    """
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        if args.command == "inspect":
            return _inspect(args)
        if args.command == "report":
            return _report(args)
        if args.command == "measures":
            return _measures(args)
        return _run(args)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            traceback.print_exc()
        message, code = error_line(err)
        print(f"error: {message}", file=sys.stderr)
        return code


_OS_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


_RESUME = "; finished work is kept in the store: fix this and run the same command again"


def error_line(err: BaseException) -> tuple[str, int]:
    """The one-line message and exit code of an error (see :func:`main`)."""
    chain = _chain(err)
    os_err = next((e for e in chain if isinstance(e, OSError) and e.errno in _OS_ERRORS), None)
    if os_err is not None and isinstance(err, StoreError):  # already says where and what
        return " ".join(str(err).split()), 4
    if os_err is not None and isinstance(err, EnsembleLensError):
        return " ".join(str(err).split()) + _RESUME, 4
    if os_err is not None:
        where = f" writing {os_err.filename}" if os_err.filename else ""
        return f"{_OS_ERRORS[os_err.errno]}{where}{_RESUME}", 4
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, StoreLockedError):
        return text, 3
    if isinstance(err, EnsembleLensError):
        return text, 2
    return f"{type(err).__name__}: {text} (run again with --debug for the traceback)", 1


def _chain(err: BaseException | None) -> list[BaseException]:
    out: list[BaseException] = []
    while err is not None and err not in out:
        out.append(err)
        err = err.__cause__ or err.__context__
    return out


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
