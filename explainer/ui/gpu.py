"""Optional ZeroGPU support: ``@gpu(...)`` is ``spaces.GPU`` on a ZeroGPU Space, else nothing.

The import is guarded so the app runs anywhere; on a GPU machine the trainer picks CUDA
by itself (``device="auto"``).
"""
from __future__ import annotations


def gpu(duration: int):
    """Decorator: request a GPU for up to ``duration`` seconds when the ``spaces`` package is present."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)
