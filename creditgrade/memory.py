"""Python memory helpers shared by models and serving (neither owns the other)."""
from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def gc_paused():
    """No generational GC pass within: while many small objects are made and kept, each pass would walk them
    all again (the collector runs as before afterwards)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
