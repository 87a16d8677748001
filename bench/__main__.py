"""``python -m bench [--quick] [name ...]``: run every benchmark module of this package
(each ``bench/*.py`` that defines ``main(argv)``) in a fixed order, on one suite.

The order: the throughput first (the latency benchmark loads the suite at a fraction of
it), then the latencies, then HTTP ingest, then any other module alphabetically.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import sys
import time
import traceback

import bench
from bench import common

ORDER = ("monitoring_throughput", "monitoring_latency", "http_ingest", "notification_latency")
SKIP = {"common", "__main__", "__init__"}
# These share one running suite (bench.common.suite); it is stopped before the others run.
SHARED_SUITE_USERS = {"monitoring_throughput", "monitoring_latency", "http_ingest"}


def discover() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(bench.__path__)
             if m.name not in SKIP and not m.name.startswith("_")]
    known = [n for n in ORDER if n in names]
    return known + sorted(n for n in names if n not in ORDER)


def run(module: object, name: str, argv: list[str]) -> int:
    """Call ``main(argv)``; a ``main()`` without parameters reads ``sys.argv`` instead."""
    entry = module.main  # type: ignore[attr-defined]
    try:
        takes_argv = bool(inspect.signature(entry).parameters)
    except (TypeError, ValueError):
        takes_argv = True
    if takes_argv:
        return int(entry(argv) or 0)
    saved = sys.argv
    sys.argv = [f"bench.{name}", *argv]
    try:
        return int(entry() or 0)
    finally:
        sys.argv = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (~1 minute)")
    parser.add_argument("names", nargs="*", help="only these benchmarks (default: all)")
    args = parser.parse_args(argv)
    passed = ["--quick"] if args.quick else []
    modules = []
    for name in discover():
        if args.names and name not in args.names:
            continue
        try:
            module = importlib.import_module(f"bench.{name}")
        except Exception:  # noqa: BLE001 - report and carry on with the others
            common.console.print(f"[red]cannot import bench.{name}[/red]")
            traceback.print_exc()
            continue
        if callable(getattr(module, "main", None)):
            modules.append((name, module))
    unknown = set(args.names) - {n for n, _ in modules}
    if unknown:
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}; "
                     f"known: {', '.join(discover())}")
    common.SHARE_SUITE = True
    failed: list[str] = []
    started = time.monotonic()
    try:
        for name, module in modules:
            common.console.rule(f"[bold]{name}[/bold]" + (" (quick)" if args.quick else ""))
            if name not in SHARED_SUITE_USERS:
                common.close_shared_suite()
            t0 = time.monotonic()
            try:
                code = run(module, name, list(passed))
            except KeyboardInterrupt:
                raise
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # noqa: BLE001 - one failing benchmark must not stop the rest
                traceback.print_exc()
                code = 1
            if code:
                failed.append(name)
            common.progress(f"{name} finished in {time.monotonic() - t0:.0f} s"
                            + (" [red](failed)[/red]" if code else ""))
    finally:
        common.close_shared_suite()
    common.progress(f"all benchmarks in {time.monotonic() - started:.0f} s; results in "
                    f"{common.RESULTS.relative_to(common.ROOT)}/"
                    + (f"; [red]failed: {', '.join(failed)}[/red]" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
