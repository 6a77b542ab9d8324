"""Generated sample data shipped with the library: a CT/MR phantom pair with a known misalignment (``phantom``)
and a PET-like phantom on the same anatomy (``pet``). Used by the demo, the self-test and the tests."""

from MedFusionLib.samples.pet import make_phantom_pet
from MedFusionLib.samples.phantom import (
    PhantomPair,
    demo_transform,
    make_phantom_pair,
    mean_displacement_error,
    move_by_header,
)

__all__ = [
    "PhantomPair",
    "demo_transform",
    "make_phantom_pair",
    "make_phantom_pet",
    "mean_displacement_error",
    "move_by_header",
]
