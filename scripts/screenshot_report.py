"""Screenshot a study report with headless Chromium, to look at the page as a reader would.

Usage::

    python scripts/screenshot_report.py runs/demo/study.report/report.html --out report.png \
        [--width 1400] [--height 3000] [--browser chromium]

Runs Debian's ``chromium`` (``apt-get install -y chromium``) headless with networking
features off and a fresh profile directory, and writes a PNG. Exits non-zero when the browser
is missing or does not produce the screenshot.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("screenshot_report")

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--hide-scrollbars",
)


def chromium_command(
    browser: str, html: Path, png: Path, profile: Path, size: tuple[int, int]
) -> list[str]:
    """The Chromium command line that screenshots ``html`` into ``png``."""
    return [
        browser,
        *_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={size[0]},{size[1]}",
        f"--screenshot={png}",
        html.resolve().as_uri(),
    ]


def screenshot(
    html: Path,
    png: Path,
    *,
    browser: str = "chromium",
    size: tuple[int, int] = (1400, 3000),
    timeout: float = 120.0,
) -> Path:
    """Render ``html`` headless and write the screenshot to ``png``; returns ``png``.

    Raises
    ------
    FileNotFoundError
        When ``html`` or the browser executable does not exist.
    RuntimeError
        When the browser exits without writing the PNG.
    """
    if not html.is_file():
        raise FileNotFoundError(f"no report at {html}")
    exe = shutil.which(browser)
    if exe is None:
        raise FileNotFoundError(
            f"browser {browser!r} not found; install it with 'apt-get install -y chromium'"
        )
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-shot-") as profile:
        cmd = chromium_command(exe, html, png.resolve(), Path(profile), size)
        log.info("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if not png.is_file():
        raise RuntimeError(
            f"{browser} exited with {proc.returncode} and wrote no screenshot; stderr tail:\n"
            f"{proc.stderr[-2000:]}"
        )
    return png


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="report.html to render")
    parser.add_argument("--out", type=Path, default=None, help="PNG path (default: next to html)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--browser", default="chromium")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out or args.html.with_suffix(".png")
    try:
        screenshot(args.html, out, browser=args.browser, size=(args.width, args.height))
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as err:
        log.error("%s", err)
        return 1
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
