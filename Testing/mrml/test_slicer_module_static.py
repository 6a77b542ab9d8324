"""Static checks of the Slicer module for what cannot run here (no Slicer application, Qt or CTK).

* ``MedFusion/MedFusion.py`` compiles, defines the four classes of a scripted module and imports no
  stand-ins;
* every ``self.ui.<name>`` it uses is a widget of ``MedFusion.ui``, every ``SlicerParameterName`` in the
  ``.ui`` is a field of the parameter node, and the ``.ui`` is well-formed Designer XML;
* every file the CMake files list exists, and every MedFusionLib script and weight file is listed;
* the extension metadata is complete.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "MedFusion"
MODULE = MODULE_DIR / "MedFusion.py"
UI = MODULE_DIR / "Resources" / "UI" / "MedFusion.ui"


def _tree():
    return ast.parse(MODULE.read_text(encoding="utf-8"), filename=str(MODULE))


def _ui_widgets() -> dict:
    root = ET.parse(UI).getroot()
    return {w.get("name"): w for w in root.iter("widget")}


def test_module_compiles():
    compile(MODULE.read_text(encoding="utf-8"), str(MODULE), "exec")


def test_module_defines_the_scripted_module_classes():
    classes = {
        node.name: [ast.unparse(b) for b in node.bases] for node in _tree().body if isinstance(node, ast.ClassDef)
    }
    assert "ScriptedLoadableModule" in classes["MedFusion"]
    assert "ScriptedLoadableModuleWidget" in classes["MedFusionWidget"]
    assert "ScriptedLoadableModuleLogic" in classes["MedFusionLogic"]
    assert "ScriptedLoadableModuleTest" in classes["MedFusionTest"]
    assert "MedFusionParameterNode" in classes


def test_module_sets_metadata():
    text = MODULE.read_text(encoding="utf-8")
    for attribute in ("title", "categories", "dependencies", "contributors", "helpText", "acknowledgementText"):
        assert f"self.parent.{attribute} =" in text, attribute
    assert "review" in text and "IFCNN" in text  # cites the review and the methods


def test_module_does_not_import_torch_at_import_time():
    top_level = []
    for node in _tree().body:
        if isinstance(node, ast.Import):
            top_level += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            top_level.append(node.module or "")
    assert not any(name.split(".")[0] in ("torch", "scipy") for name in top_level)


def test_every_ui_name_used_exists_in_the_ui():
    used = set(re.findall(r"self\.ui\.(\w+)", MODULE.read_text(encoding="utf-8")))
    widgets = _ui_widgets()
    assert used, "the module uses no self.ui widgets"
    missing = sorted(used - set(widgets))
    assert not missing, f"self.ui names missing from {UI.name}: {missing}"


def test_ui_is_designer_format_with_a_qmrmlwidget_top():
    root = ET.parse(UI).getroot()
    assert root.tag == "ui" and root.get("version") == "4.0"
    top = root.find("widget")
    assert top.get("class") == "qMRMLWidget"
    custom = {c.findtext("class") for c in root.iter("customwidget")}
    used = {w.get("class") for w in root.iter("widget")}
    assert {c for c in used if c.startswith(("qMRML", "ctk"))} <= custom
    # node combo boxes get the scene from the top widget
    combos = {w.get("name") for w in root.iter("widget") if w.get("class") == "qMRMLNodeComboBox"}
    connected = {
        c.findtext("receiver")
        for c in root.iter("connection")
        if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
    }
    assert combos and combos <= connected


def _parameter_fields() -> set:
    for node in _tree().body:
        if isinstance(node, ast.ClassDef) and node.name == "MedFusionParameterNode":
            return {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)}
    return set()


def test_ui_parameter_bindings_match_the_parameter_node():
    fields = _parameter_fields()
    assert {
        "fixedVolume",
        "movingVolume",
        "method",
        "mode",
        "axis",
        "registration",
        "opacity",
        "colour",
        "outputVolume",
    } <= fields
    bound = set()
    for widget in ET.parse(UI).getroot().iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound.add(prop.findtext("string"))
    assert bound, "no widget is bound to the parameter node"
    assert bound <= fields, f"bound to unknown parameters: {sorted(bound - fields)}"


def _cmake_lists(path: Path) -> dict:
    """``set(NAME item item ...)`` blocks of a CMake file."""
    text = re.sub(r"#[^\n]*", "", path.read_text(encoding="utf-8"))
    return {m.group(1): m.group(2).split() for m in re.finditer(r"set\((\w+)\s+([^)]*)\)", text)}


def _cmake_globs(path: Path) -> dict:
    """``file(GLOB[_RECURSE] NAME [CONFIGURE_DEPENDS] RELATIVE dir pattern ...)`` blocks: NAME -> patterns
    relative to the RELATIVE folder (``${...}/`` prefixes dropped)."""
    text = re.sub(r"#[^\n]*", "", path.read_text(encoding="utf-8"))
    globs = {}
    for m in re.finditer(r"file\((GLOB_RECURSE|GLOB)\s+(\w+)\s+([^)]*)\)", text):
        words = [w for w in m.group(3).split() if w not in ("CONFIGURE_DEPENDS", "RELATIVE")]
        globs[m.group(2)] = (m.group(1), [re.sub(r"^\$\{\w+\}/", "", w) for w in words[1:]])
    return globs


def _matches(path: str, kind: str, pattern: str) -> bool:
    """CMake's glob: ``*`` stays within a folder, except that GLOB_RECURSE also descends into subfolders."""
    folder, _, name = pattern.rpartition("/")
    if kind == "GLOB_RECURSE":
        return path.startswith(folder + "/") and fnmatch.fnmatch(path.rpartition("/")[2], name)
    return path.rpartition("/")[0] == folder and fnmatch.fnmatch(path.rpartition("/")[2], name)


def test_every_file_the_cmake_lists_exists():
    lists = _cmake_lists(MODULE_DIR / "CMakeLists.txt")
    module_name = lists["MODULE_NAME"][0]
    expand = lambda item: item.replace("${MODULE_NAME}", module_name)  # noqa: E731
    missing = []
    for key in ("MODULE_PYTHON_SCRIPTS", "MODULE_PYTHON_RESOURCES"):
        missing += [item for item in map(expand, lists[key]) if not (MODULE_DIR / item).is_file()]
    assert not missing, f"listed in MedFusion/CMakeLists.txt but missing: {missing}"
    assert (MODULE_DIR / "Testing" / "Python" / "CMakeLists.txt").is_file()
    assert (ROOT / "MedFusion.png").is_file()


def _package_files() -> set:
    """MedFusionLib's scripts and weight files: those git tracks (so work in progress in a checkout does not
    count), or every file when this is not a git checkout."""
    import subprocess

    try:
        tracked = subprocess.run(
            ["git", "ls-files", "MedFusionLib"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        tracked = [str(p.relative_to(ROOT)) for p in (ROOT / "MedFusionLib").rglob("*") if p.is_file()]
    return {
        f
        for f in tracked
        if "__pycache__" not in f
        and (f.endswith(".py") or f.startswith("MedFusionLib/weights/") or f.endswith("py.typed"))
    }


def test_cmake_globs_cover_every_medfusionlib_script_and_weight_file():
    globs = _cmake_globs(MODULE_DIR / "CMakeLists.txt")
    patterns = [
        (kind, p)
        for key in ("MEDFUSIONLIB_PYTHON_SCRIPTS", "MEDFUSIONLIB_PYTHON_RESOURCES")
        for kind, ps in [globs[key]]
        for p in ps
    ]
    covered = lambda f: any(_matches(f, kind, p) for kind, p in patterns)  # noqa: E731
    missing = sorted(f for f in _package_files() if not covered(f))
    assert not missing, "not matched by the globs of MedFusion/CMakeLists.txt:\n  " + "\n  ".join(missing)
    assert covered("MedFusionLib/apps/worker.py") and covered("MedFusionLib/weights/fusion-unet.onnx")
    assert not covered("MedFusionLib/weights/notes.txt") and not covered("Testing/conftest.py")


def test_module_cmake_builds_the_scripted_module_with_its_test():
    text = (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "slicerMacroBuildScriptedModule(" in text and "WITH_GENERIC_TESTS" in text
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text


def test_top_level_cmake_has_the_extension_metadata():
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    for variable in (
        "EXTENSION_HOMEPAGE",
        "EXTENSION_CATEGORY",
        "EXTENSION_CONTRIBUTORS",
        "EXTENSION_DESCRIPTION",
        "EXTENSION_ICONURL",
        "EXTENSION_SCREENSHOTURLS",
        "EXTENSION_DEPENDS",
    ):
        assert re.search(rf"set\({variable}\s+\"[^\"]+\"\)", text), variable
    for line in (
        "find_package(Slicer REQUIRED)",
        "include(${Slicer_USE_FILE})",
        "add_subdirectory(MedFusion)",
        "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
        "include(${Slicer_EXTENSION_CPACK})",
    ):
        assert line in text, line


def test_icons_are_128_pixels():
    pil = pytest.importorskip("PIL.Image")
    for path in (ROOT / "MedFusion.png", MODULE_DIR / "Resources" / "Icons" / "MedFusion.png"):
        with pil.open(path) as image:
            assert image.size == (128, 128)


def test_requirements_do_not_pin_torch():
    lines = [
        l.strip()
        for l in (MODULE_DIR / "Resources" / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if l.strip() and not l.startswith("#")
    ]
    assert lines and not any(l.lower().startswith("torch") for l in lines)


def test_no_stand_in_slicer_modules_in_the_tests():
    for path in (ROOT / "Testing").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"sys\.modules\[\s*['\"](qt|ctk|slicer)['\"]\s*\]\s*=", text), path.name
