"""How long registration takes to return after Cancel, per optimiser stage (the GUIs kill a job that has not
stopped 0.5 s after Cancel; this shows which stage needs that).

    python benchmarks/cancel_latency.py          # the demo phantom, CT fixed, MR moving

Cancel is asked at the N-th progress message of each stage (right at an iteration event, the best case for
a cooperative stop); the table gives the seconds from that request until ``register`` raised, and the
longest gap between two progress messages of the stage (the worst wait before a request is even seen).
"""

from __future__ import annotations

import time

from MedFusionLib.core.errors import OperationCancelled
from MedFusionLib.registration import register
from MedFusionLib.samples.phantom import make_phantom_pair

STAGES = (("rigid", "rigid, level"), ("affine", "affine, level"), ("deformable", "B-spline"))  # mode, messages
AFTER_MESSAGES = 3


def measure(fixed, moving, mode: str, stage_prefix: str) -> tuple[float, float]:
    state: dict = {"seen": 0, "asked": None, "last": None, "gap": 0.0}

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if message.startswith(stage_prefix):
            if state["last"] is not None:
                state["gap"] = max(state["gap"], now - state["last"])
            state["last"] = now
            state["seen"] += 1
            if state["seen"] == AFTER_MESSAGES and state["asked"] is None:
                state["asked"] = now

    try:
        register(fixed, moving, mode, progress=progress, cancel=lambda: state["asked"] is not None)
    except OperationCancelled:
        return time.monotonic() - state["asked"], state["gap"]
    raise SystemExit(f"{mode}: the stage {stage_prefix!r} never reached {AFTER_MESSAGES} progress messages")


def main() -> None:
    pair = make_phantom_pair(7)
    print(f"{'registration':<12} {'stage':<10} {'cancel -> return (s)':>21} {'longest gap (s)':>16}")
    for mode, prefix in STAGES:
        latency, gap = measure(pair.ct, pair.mr, mode, prefix)
        print(f"{mode:<12} {prefix:<10} {latency:>21.2f} {gap:>16.2f}")


if __name__ == "__main__":
    main()
