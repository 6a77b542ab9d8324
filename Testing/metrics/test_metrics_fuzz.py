"""Seeded fuzzing of the metric suite: random shapes, dtypes and values (NaN, Inf, constants, extremes).
Every call returns finite values (JSON-safe) or fails with one InputError line; inputs are never modified."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.metrics import score

DTYPES = (np.uint8, np.int16, np.float32, np.float64, np.bool_)
FINITE = (0.0, 1.0, -1.0, 255.0, 1e12, -1e12)
NON_FINITE = (float("nan"), float("inf"))


@st.composite
def cases(draw):
    ndim = draw(st.sampled_from((2, 2, 3)))
    side = st.sampled_from((11, 12, 13, 14, 11, 12, 13, 14, 12, 10))  # 10 is below the SSIM window: refused
    shape = tuple(draw(side) if ndim == 2 or i else draw(st.integers(1, 3)) for i in range(ndim))
    n = draw(st.sampled_from((2, 3, 2, 3, 2, 3, 2, 3, 2, 1)))  # one source now and then: refused
    arrays = []
    for i in range(n + 1):
        dtype = draw(st.sampled_from(DTYPES))
        this = shape if draw(st.integers(0, 39)) < 39 else tuple(s + 1 for s in shape)  # sometimes mismatched
        values = np.random.default_rng(draw(st.integers(0, 2**16))).random(this) * draw(
            st.sampled_from((1.0, 255.0, 1e6))
        )
        if draw(st.integers(0, 4)) == 4:
            values[...] = draw(st.sampled_from(FINITE))  # constant images
        for _ in range(draw(st.integers(0, 2))):
            special = FINITE if draw(st.integers(0, 14)) < 14 else NON_FINITE  # NaN/Inf now and then
            values.flat[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from(special))
        with np.errstate(invalid="ignore", over="ignore"):
            arrays.append(
                np.nan_to_num(values).astype(dtype)
                if dtype != np.float64 and dtype != np.float32
                else values.astype(dtype)
            )
    axis = 0 if ndim == 2 or draw(st.integers(0, 3)) < 3 else draw(st.integers(1, 2))  # other axes: thin slices
    return arrays[:-1], arrays[-1], axis


@settings(
    max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(case=cases())
def test_metrics_return_finite_values_or_one_line_errors(case):
    sources, fused, axis = case
    copies = [a.copy() for a in sources + [fused]]
    try:
        result = score(sources, fused, axis=axis, include_3d=fused.ndim == 3 and fused.shape[0] <= 2)
    except MedFusionError as err:
        event("refused")
        assert str(err) and "\n" not in str(err)
    else:
        event(f"scored ({fused.ndim}-D)")
        json.dumps(result, allow_nan=False)
        assert all(np.isfinite(v) for k, v in result.items() if k != "protocol")
    for before, after in zip(copies, sources + [fused]):
        np.testing.assert_array_equal(before, after)
