"""A digest of a generated image set's files, for the determinism tests of the generated proxy sets."""
import hashlib
from pathlib import Path


def jpeg_digest(root: Path) -> str:
    """sha256 over every JPEG's path and bytes, sorted: equal for byte-identical sets, whatever their folder."""
    h = hashlib.sha256()
    for f in sorted(root.rglob('*.JPEG')):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()
