"""One case, end to end: prepare (validate, register, normalise) -> fuse -> result, plus output checks and
the job-folder format the Slicer module's worker process uses. Shared by every front-end."""

from MedFusionLib.pipeline.fuse import fuse_images, fuse_prepared
from MedFusionLib.pipeline.outputs import check_output_path, write_json
from MedFusionLib.pipeline.prepare import PreparedInputs, prepare_inputs
from MedFusionLib.pipeline.result import FUSION_SCALE, FusionResult

__all__ = [
    "FUSION_SCALE",
    "FusionResult",
    "PreparedInputs",
    "check_output_path",
    "fuse_images",
    "fuse_prepared",
    "prepare_inputs",
    "write_json",
]
