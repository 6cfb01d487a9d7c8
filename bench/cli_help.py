"""How long `ggt VERB --help` takes, every verb: the cost of importing the package and the CLI.

Each case runs in a fresh interpreter N times; the minimum wall and CPU (user + sys) time
is printed. CPU time is the steadier number on a shared machine.

    python bench/cli_help.py [N]
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

VERBS = ("sample", "build", "verify", "info", "publish", "baseline", "score", "weights", "view", "synth")


def cases() -> list[tuple[str, list[str]]]:
    found = [("python -c pass", ["-c", "pass"]), ("import ggt_dataset", ["-c", "import ggt_dataset"]),
             ("import ggt_dataset.cli.main", ["-c", "import ggt_dataset.cli.main"]),
             ("ggt --help", ["-m", "ggt_dataset.cli.main", "--help"])]
    return found + [(f"ggt {v} --help", ["-m", "ggt_dataset.cli.main", v, "--help"]) for v in VERBS]


def measure(args: list[str], n: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(n):
        before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(wall)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(walls), min(cpus)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    for name, args in cases():
        wall, cpu = measure(args, n)
        print(f"{name:<30} wall {wall:.3f} s   cpu {cpu:.3f} s")


if __name__ == "__main__":
    main()
