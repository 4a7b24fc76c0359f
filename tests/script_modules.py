"""Import a repository script (tools/*.py, benchmarks/*.py) as a module, to call its functions in a test."""
import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(relpath: str) -> ModuleType:
    """The script at ``ROOT / relpath``, executed as a fresh module (its ``__main__`` block does not run)."""
    path = ROOT / relpath
    spec = importlib.util.spec_from_file_location(f'_script_{path.stem}', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
