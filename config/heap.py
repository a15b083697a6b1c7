"""Keeping the garbage collector off what a process built at start."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect once, then move every object alive (the app, its schemas, SQLAlchemy's metadata, the actors) to the
    collector's permanent generation. A full collection then walks only what came after: in the web it took 60-80
    ms under load, stalling every request of the process, and takes about 6 ms frozen."""
    gc.collect()
    gc.freeze()
