"""Cost of request validation and injection detection for the ``context_stack`` prompt.

Run it:

    python bench/bench_validation.py                 # print a table
    python bench/bench_validation.py --json out.json # and write the figures as JSON

Each case is timed with :mod:`timeit` (auto-ranged loops, best and median of 7 repeats):
``validate`` is :func:`~ctxfy.core.params.validate_arguments` (limits, types, character
policy, NFC), ``detect`` is :func:`~ctxfy.core.injection.detect_injection` on the validated
values, ``total`` is both, as :class:`RequestValidationMiddleware` runs them. ``render``
(the single-pass rendering done by the prompt itself) is shown for scale.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import timeit
from collections.abc import Callable, Mapping
from pathlib import Path

from payloads import PROMPT_ARGUMENTS as TYPICAL
from payloads import SEED_STACK

from ctxfy.core.injection import detect_injection
from ctxfy.core.params import validate_arguments
from ctxfy.core.prompt import render_prompt
from ctxfy.prompts import CONTEXT_STACK, builtin_blocks


def _fill(text: str, length: int) -> str:
    return (text * (length // len(text) + 1))[:length]


def _at_max(text: str) -> dict[str, object]:
    return {p.name: _fill(text, p.max_length) for p in CONTEXT_STACK.params}


def cases() -> dict[str, dict[str, object]]:
    """The inputs timed, by name."""
    seed = SEED_STACK
    return {
        "typical (8 fields)": TYPICAL,
        "long (every field at its max, seed text)": _at_max(seed + "\n"),
        "long, non-Latin (CJK at max)": _at_max(
            "系统需要支持多租户\uff0c每个租户的数据必须隔离\u3002"
        ),
        "worst: 'ignore all the previous ' at max": _at_max("ignore all the previous "),
        "worst: 'you are now your ' at max": _at_max("you are now your "),
        "worst: 'act as DAN ' at max": _at_max("act as DAN "),
        "worst: base64-like run at max": _at_max("QUFB"),
    }


def _time(func: Callable[[], object]) -> tuple[float, float]:
    timer = timeit.Timer(func)
    loops, _ = timer.autorange()
    runs = [t / loops * 1e6 for t in timer.repeat(repeat=7, number=loops)]
    return min(runs), statistics.median(runs)


def measure(arguments: Mapping[str, object]) -> dict[str, float]:
    """Time validation, detection and rendering of one set of arguments, in µs."""
    params = CONTEXT_STACK.params
    result = validate_arguments(params, arguments)
    if not result.ok:
        raise SystemExit(f"bench input is invalid: {result.errors}")
    values = result.values
    blocks = builtin_blocks()
    figures: dict[str, float] = {"chars": float(sum(len(str(v)) for v in arguments.values()))}
    for name, func in {
        "validate": lambda: validate_arguments(params, arguments),
        "detect": lambda: detect_injection(values),
        "total": lambda: detect_injection(validate_arguments(params, arguments).values),
        "render": lambda: render_prompt(CONTEXT_STACK, values, blocks),
    }.items():
        best, median = _time(func)
        figures[f"{name}_best_us"] = round(best, 1)
        figures[f"{name}_median_us"] = round(median, 1)
    return figures


def machine() -> dict[str, str]:
    """Describe where the figures were taken."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": str(os.cpu_count()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    results = {name: measure(arguments) for name, arguments in cases().items()}
    print(f"# {machine()}")
    header = f"{'case':44} {'chars':>7} {'validate':>9} {'detect':>9} {'total':>9} {'render':>8}"
    print(header + "   (median µs)")
    for name, fig in results.items():
        print(
            f"{name:44} {int(fig['chars']):>7} {fig['validate_median_us']:>9.1f} "
            f"{fig['detect_median_us']:>9.1f} {fig['total_median_us']:>9.1f} "
            f"{fig['render_median_us']:>8.1f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine(), "results": results}, indent=2) + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
