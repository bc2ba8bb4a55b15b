"""Silence what libraries print that a user can do nothing about, only where it is known to be noise.

Loading and converting a model prints torch's deprecation notices for
`torch.jit.trace` (used by OpenVINO's converter), tracer warnings about Python
values in transformers' masking code, transformers' advice on config fields the
model does not use, and a "Loading weights" progress bar: ~130 lines on a first
run, none of them about the user's data. Each is silenced by category and module,
and only while a model loads; the same warnings elsewhere, and every other
warning, still show.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager


@contextmanager
def quiet_model_loading():
    """The block runs with the known noise of loading or converting a model silenced (also a decorator)."""
    import torch
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    progress_bars = transformers_logging.is_progress_bar_enabled()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit\._trace")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"transformers(\.|$)")
        warnings.filterwarnings(
            "ignore",
            category=FutureWarning,
            message=r"`is_gradient_checkpointing` is deprecated",
            module=r"transformers\.modeling_utils",
        )
        transformers_logging.set_verbosity_error()  # its advice, e.g. "`loss_type=None` ... is unrecognized"
        transformers_logging.disable_progress_bar()
        try:
            yield
        finally:
            transformers_logging.set_verbosity(verbosity)
            if progress_bars:
                transformers_logging.enable_progress_bar()
