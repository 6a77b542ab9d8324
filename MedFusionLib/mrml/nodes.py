"""Volume nodes <-> SimpleITK images with exact geometry.

Slicer describes a volume by its IJK-to-RAS matrix (right, anterior, superior); ITK and SimpleITK by
origin, spacing and direction in LPS (left, posterior, superior). The two frames differ by
``diag(-1, -1, 1)``. A parent transform already on a node is honoured: the image handed to the library
is where the volume *appears* in the world (linear parents are folded into the header, non-linear ones
are hardened on a temporary clone that is removed again), so registration sees what the user sees.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

from MedFusionLib.core.errors import InputError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])  # its own inverse


def matrix_to_array(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def array_to_matrix(array: np.ndarray) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r][c]))
    return matrix


def ijk_to_ras(node) -> np.ndarray:
    """The node's own IJK-to-RAS matrix (without any parent transform)."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return matrix_to_array(matrix)


def parent_linear_to_world(node) -> np.ndarray | None:
    """The 4x4 RAS matrix of the node's parent transforms when they are all linear, identity when it has
    none, None when some parent is non-linear."""
    parent = node.GetParentTransformNode()
    if parent is None:
        return np.eye(4)
    if not parent.IsTransformToWorldLinear():
        return None
    matrix = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(matrix)
    return matrix_to_array(matrix)


def geometry_from_ijk_to_ras(ijk_to_ras_matrix: np.ndarray) -> tuple[tuple, tuple, tuple]:
    """(origin, spacing, direction) in LPS, SimpleITK's convention, of an IJK-to-RAS matrix."""
    lps = LPS_TO_RAS @ np.asarray(ijk_to_ras_matrix, dtype=float)
    columns = lps[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    if np.any(spacing <= 0):
        raise InputError("volume has a zero spacing")
    direction = columns / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise InputError(
            "volume geometry is sheared (a non-rigid linear parent transform); harden or remove the transform first"
        )
    return tuple(lps[:3, 3]), tuple(spacing), tuple(direction.ravel())


def ijk_to_ras_from_image(image: sitk.Image) -> np.ndarray:
    """The IJK-to-RAS matrix of a 3-D SimpleITK image's geometry."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.array(image.GetSpacing())
    lps[:3, 3] = image.GetOrigin()
    return LPS_TO_RAS @ lps


def volume_voxels(node) -> np.ndarray:
    if node is None or node.GetImageData() is None:
        raise InputError(f"volume {node.GetName() if node else None!r} holds no image data")
    if node.GetImageData().GetNumberOfScalarComponents() != 1:
        raise InputError(f"volume {node.GetName()!r} is not a scalar volume")
    return np.array(slicer.util.arrayFromVolume(node), copy=True)  # a copy: the node is never touched


def image_from_voxels(array: np.ndarray, ijk_to_ras_matrix: np.ndarray) -> sitk.Image:
    origin, spacing, direction = geometry_from_ijk_to_ras(ijk_to_ras_matrix)
    image = sitk.GetImageFromArray(array)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


def volume_to_image(node) -> sitk.Image:
    """The volume as it appears in the world: voxels copied, geometry with any parent transform applied."""
    if node is None or not node.IsA("vtkMRMLScalarVolumeNode"):
        raise InputError("a scalar volume node is needed")
    to_world = parent_linear_to_world(node)
    if to_world is not None:
        return image_from_voxels(volume_voxels(node), to_world @ ijk_to_ras(node))
    return hardened_image(node)


def hardened_image(node) -> sitk.Image:
    """Non-linear parent: harden it on a temporary clone (Slicer resamples the voxels), then remove the clone."""
    scene = node.GetScene()
    logic = slicer.vtkSlicerVolumesLogic()
    logic.SetMRMLScene(scene)
    clone = logic.CloneVolume(scene, node, node.GetName() + "_medfusion_tmp")
    try:
        clone.SetAndObserveTransformNodeID(node.GetParentTransformNode().GetID())
        clone.HardenTransform()
        if clone.GetParentTransformNode() is not None:
            raise InputError(f"could not harden the transform of {node.GetName()!r}")
        return image_from_voxels(volume_voxels(clone), ijk_to_ras(clone))
    finally:
        for index in reversed(range(clone.GetNumberOfDisplayNodes())):
            display = clone.GetNthDisplayNode(index)
            if display is not None:
                scene.RemoveNode(display)
        scene.RemoveNode(clone)


def update_volume_from_image(node, image: sitk.Image, ijk_to_ras_matrix: np.ndarray | None = None) -> None:
    """Put ``image``'s voxels (scalar, or vector for RGB) and geometry into ``node``.

    ``ijk_to_ras_matrix`` overrides the geometry (used to place the output on the fixed node's own grid
    under the fixed node's parent transform).
    """
    array = sitk.GetArrayFromImage(image)
    slicer.util.updateVolumeFromArray(node, array)
    matrix = ijk_to_ras_from_image(image) if ijk_to_ras_matrix is None else ijk_to_ras_matrix
    node.SetIJKToRASMatrix(array_to_matrix(matrix))


def snapshot(node) -> dict:
    """Voxels, geometry and parent of a node: used by tests (and callers) to check inputs stay untouched."""
    return {
        "voxels": np.array(slicer.util.arrayFromVolume(node), copy=True),
        "ijk_to_ras": ijk_to_ras(node),
        "parent": node.GetTransformNodeID(),
        "mtime_name": node.GetName(),
    }
