"""ITK registration transforms -> Slicer transform nodes, in Slicer's convention.

The library follows ITK: a registration transform ``T`` maps points of the FIXED image (LPS, mm) to the
MOVING image. Slicer's convention is the other way round: a transform node set as the moving node's
parent maps the moving node's coordinates to the world (RAS), so that the moving volume *appears* aligned
to the fixed one. Hence the node's transform-from-parent is ``T`` expressed in RAS
(``diag(-1,-1,1,1) @ T @ diag(-1,-1,1,1)``) and its transform-to-parent is the inverse.

Linear results (rigid, affine) become a ``vtkMRMLLinearTransformNode``; deformable ones (affine + B-spline
composite) a ``vtkMRMLGridTransformNode`` holding ``T`` sampled as a displacement field on the fixed grid
(Slicer inverts it on the fly for display and resampling).

A linear parent transform that the moving node already had is composed into the result, because the
registration ran on the volume as it appeared in the world.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from vtk.util import numpy_support

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.mrml.nodes import LPS_TO_RAS, array_to_matrix, matrix_to_array

MAX_GRID_VOXELS = 2_000_000  # the displacement grid is coarsened beyond this


def is_linear(transform: sitk.Transform) -> bool:
    try:
        return bool(transform.IsLinear())
    except (AttributeError, RuntimeError):
        return transform.GetName() in (
            "Euler3DTransform",
            "AffineTransform",
            "VersorRigid3DTransform",
            "Similarity3DTransform",
            "TranslationTransform",
            "ScaleTransform",
        )


def linear_lps_matrix(transform: sitk.Transform) -> np.ndarray:
    """4x4 homogeneous matrix of a linear ITK transform (fixed LPS -> moving LPS), read off four points."""
    origin = np.array(transform.TransformPoint((0.0, 0.0, 0.0)))
    matrix = np.eye(4)
    for axis in range(3):
        unit = [0.0, 0.0, 0.0]
        unit[axis] = 1.0
        matrix[:3, axis] = np.array(transform.TransformPoint(tuple(unit))) - origin
    matrix[:3, 3] = origin
    return matrix


def to_ras(matrix_lps: np.ndarray) -> np.ndarray:
    return LPS_TO_RAS @ matrix_lps @ LPS_TO_RAS


def moving_to_world_matrix(transform: sitk.Transform, moving_parent_to_world: np.ndarray | None = None) -> np.ndarray:
    """RAS matrix that, as the moving node's parent, aligns it to the fixed node (Slicer's convention)."""
    fixed_to_moving_ras = to_ras(linear_lps_matrix(transform))
    parent = np.eye(4) if moving_parent_to_world is None else moving_parent_to_world
    return np.linalg.inv(fixed_to_moving_ras) @ parent


def _grid_geometry(reference: sitk.Image):
    size = np.array(reference.GetSize(), dtype=float)
    spacing = np.array(reference.GetSpacing(), dtype=float)
    factor = max(1.0, (np.prod(size) / MAX_GRID_VOXELS) ** (1.0 / 3.0))
    new_size = np.maximum(2, np.ceil(size / factor)).astype(int)
    new_spacing = spacing * (size - 1) / np.maximum(new_size - 1, 1)
    return [int(v) for v in new_size], tuple(new_spacing), reference.GetOrigin(), reference.GetDirection()


def displacement_grid_transform(
    transform: sitk.Transform, reference: sitk.Image, moving_parent_to_world: np.ndarray | None = None
):
    """A ``vtkOrientedGridTransform`` (RAS) mapping world points to the moving node's own coordinates."""
    size, spacing, origin, direction = _grid_geometry(reference)
    field = sitk.TransformToDisplacementField(transform, sitk.sitkVectorFloat64, size, origin, spacing, direction)
    disp_lps = sitk.GetArrayFromImage(field)  # (k, j, i, 3), x y z in LPS
    index = np.stack(np.meshgrid(*(np.arange(n) for n in size[::-1]), indexing="ij")[::-1], axis=-1)
    d = np.array(direction).reshape(3, 3)
    points_lps = np.asarray(origin) + (index * np.asarray(spacing)) @ d.T
    flip = np.array([-1.0, -1.0, 1.0])
    points_ras = points_lps * flip
    mapped_ras = (points_lps + disp_lps) * flip
    if moving_parent_to_world is not None and not np.allclose(moving_parent_to_world, np.eye(4)):
        inverse = np.linalg.inv(moving_parent_to_world)
        mapped_ras = mapped_ras @ inverse[:3, :3].T + inverse[:3, 3]
    displacement = np.ascontiguousarray((mapped_ras - points_ras).reshape(-1, 3))

    grid = vtk.vtkImageData()
    grid.SetOrigin(*(np.asarray(origin) * flip))
    grid.SetSpacing(*spacing)
    grid.SetDimensions(*size)
    vectors = numpy_support.numpy_to_vtk(displacement, deep=True, array_type=vtk.VTK_DOUBLE)
    vectors.SetNumberOfComponents(3)
    grid.GetPointData().SetScalars(vectors)
    direction_ras = np.eye(4)
    direction_ras[:3, :3] = np.diag(flip) @ d
    grid_transform = slicer.vtkOrientedGridTransform()
    grid_transform.SetDisplacementGridData(grid)
    grid_transform.SetGridDirectionMatrix(array_to_matrix(direction_ras))
    grid_transform.SetInterpolationModeToCubic()
    return grid_transform


def transform_node_from_registration(
    scene,
    transform: sitk.Transform,
    reference: sitk.Image,
    name: str,
    moving_parent_to_world: np.ndarray | None = None,
    node=None,
):
    """A new (or the given, reused) transform node holding the registration in Slicer's convention."""
    if moving_parent_to_world is None:
        moving_parent_to_world = np.eye(4)
    if is_linear(transform):
        if node is None or not node.IsA("vtkMRMLLinearTransformNode"):
            node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", name)
        node.SetMatrixTransformToParent(array_to_matrix(moving_to_world_matrix(transform, moving_parent_to_world)))
    else:
        grid = displacement_grid_transform(transform, reference, moving_parent_to_world)
        if node is None or not node.IsA("vtkMRMLGridTransformNode"):
            node = scene.AddNewNodeByClass("vtkMRMLGridTransformNode", name)
        node.SetAndObserveTransformFromParent(grid)
    node.SetAttribute("MedFusion.Convention", "moving-to-fixed (set as the moving volume's parent)")
    return node


def itk_from_transform_node(node) -> sitk.Transform:
    """Inverse of :func:`transform_node_from_registration` for linear nodes (fixed LPS -> moving LPS)."""
    if not node.IsLinear():
        raise MedFusionError("only linear transform nodes convert back to an ITK matrix")
    matrix = vtk.vtkMatrix4x4()
    node.GetMatrixTransformToParent(matrix)
    fixed_to_moving_lps = LPS_TO_RAS @ np.linalg.inv(matrix_to_array(matrix)) @ LPS_TO_RAS
    affine = sitk.AffineTransform(3)
    affine.SetMatrix(tuple(fixed_to_moving_lps[:3, :3].ravel()))
    affine.SetTranslation(tuple(fixed_to_moving_lps[:3, 3]))
    return affine
