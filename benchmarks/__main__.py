"""``python -m benchmarks``: the side-by-side benchmark (see docs/performance.md).

python -m benchmarks             # the full run (about 25 minutes), into docs/performance/
python -m benchmarks soak        # the 10-minute soak, added to the same results
python -m benchmarks all         # both
python -m benchmarks report      # re-make results.md and performance.png from results.json
python -m benchmarks run --quick --out /tmp/bench   # tiny numbers (the CI smoke run)
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import tempfile
from pathlib import Path

from benchmarks import report, runner
from benchmarks.configurations import CONFIGURATIONS

DEFAULT_OUT = runner.ROOT / "docs" / "performance"


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "action", nargs="?", default="run", choices=("run", "soak", "all", "report")
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where results go")
    parser.add_argument("--quick", action="store_true", help="tiny numbers (smoke run)")
    parser.add_argument(
        "--database",
        choices=("postgres", "sqlite"),
        default="postgres",
        help="the tuned configuration's: PostgreSQL (BENCH_POSTGRES_URL or DATABASE_URL, "
        "else 127.0.0.1) or SQLite WAL; the deployment configuration's is always PostgreSQL",
    )
    parser.add_argument("--database-name", default="bench_sophie")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the load scenarios")
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    parser.add_argument(
        "--config",
        action="append",
        choices=sorted(CONFIGURATIONS),
        help="run only this configuration (repeatable; default: all of each scenario's)",
    )
    parser.add_argument("--soak-seconds", type=float, default=600)
    parser.add_argument("--workdir", type=Path, default=None, help="logs and SQLite files")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="after the measured rounds of the instant-model scenarios, one more round per "
        "configuration under py-spy: the table says where each one's CPU time went "
        "(profiles in DIR, by default the logs' folder)",
    )
    args = parser.parse_args(argv)
    # Stopped from outside: unwind, so every process started is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = "python -m benchmarks " + shlex.join(argv) if argv else "python -m benchmarks"
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    document = _load(results_path)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sophie-bench-"))
    runner.log(f"logs in {workdir}")

    if args.action != "report":
        bench = runner.Bench(
            workdir=workdir,
            database=args.database,
            database_name=args.database_name,
            warm=not args.quick,
            profile_dir=None
            if args.profile is None
            else (Path(args.profile) if args.profile else workdir / "profiles"),
        )
        try:
            bench.start()
            if args.action in ("run", "all"):
                scenarios = (
                    runner.quick_scenarios() if args.quick else runner.full_scenarios(args.rounds)
                )
                if args.only:
                    scenarios = [s for s in scenarios if s.name in args.only]
                if args.config:
                    scenarios = runner.with_configs(scenarios, args.config)
                document["run"] = runner.run(scenarios, bench=bench, command=command)
            if args.action in ("soak", "all"):
                quick = {"sessions": 5, "rate": 5, "wave_seconds": 1, "sample_every": 0.3}
                document["soak"] = runner.soak(
                    bench=bench,
                    command=command,
                    seconds=3 if args.quick else args.soak_seconds,
                    **(quick if args.quick else {}),
                )
        finally:
            bench.close()
    if args.action != "report":
        # Compact: thousands of latency samples, one number per line would be megabytes.
        results_path.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    for path in report.write(document.get("run"), document.get("soak"), args.out):
        runner.log(f"wrote {path}")
    if document.get("run"):
        print(report.markdown(document["run"], document.get("soak")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
