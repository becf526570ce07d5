"""What an unpacked artifact must look like: where its model folder is, and whether it holds a model."""

from __future__ import annotations

from pathlib import Path

from zeroserve.errors import ArtifactError

# Entries macOS tools add next to the real content; they must not stop the single-folder rule below.
_CLUTTER = frozenset({"__MACOSX", ".DS_Store"})


def find_model_root(unpacked: Path) -> Path:
    """The folder inside `unpacked` that holds the model: `unpacked` itself in the SageMaker Hugging Face
    layout (config.json at the top), or its only sub-folder when the artifact wraps everything in one folder.

    SageMaker itself would fail the wrapped layout, but `tar czf model.tar.gz my-model/` is the most common
    way users build a tarball by mistake, and descending one level cannot pick up the wrong files: it happens
    only when the top level holds nothing but that folder.
    """
    if _holds_model(unpacked):
        return unpacked
    entries = sorted(p for p in unpacked.iterdir() if not _is_clutter(p.name))
    if not entries:
        raise ArtifactError("artifact is empty")
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        if _holds_model(entries[0]):
            return entries[0]
        raise ArtifactError(
            f"artifact has no config.json at its top level, nor inside its only folder {entries[0].name!r}"
        )
    shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in entries[:8])
    more = f" and {len(entries) - 8} more" if len(entries) > 8 else ""
    raise ArtifactError(
        f"artifact has no config.json at its top level (and no code/inference.py); it holds {shown}{more}"
    )


def _holds_model(folder: Path) -> bool:
    # Custom code may load its model from anywhere (model_fn), so code/inference.py alone is enough.
    return (folder / "config.json").is_file() or (folder / "code" / "inference.py").is_file()


def _is_clutter(name: str) -> bool:
    return name in _CLUTTER or name.startswith("._")
