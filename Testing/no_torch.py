"""A Python process where importing torch raises: how tests show that fusing needs no torch (issue 21)."""

from __future__ import annotations

# prepended to a script (``no_torch_script``) or written as a ``sitecustomize.py`` on PYTHONPATH (a server and the
# workers it starts): any import of torch or a torch submodule raises ImportError
BLOCK_TORCH = """
import importlib.abc
class _BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("importing torch is blocked in this test")
sys.meta_path.insert(0, _BlockTorch())
"""


def no_torch_script(body: str) -> str:
    """``body`` in a process where importing torch raises, checked afterwards not to have imported it."""
    return (
        f"import sys\n{BLOCK_TORCH}\n{body}\nassert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('NO TORCH')\n"
    )
