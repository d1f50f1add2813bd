"""NumPy's floating-point error handling for NumPy < 2.0 (which has no PyUFunc_GiveFloatingpointErrors).

The C++ bindings call :func:`give_fp_errors` only when a kernel raised an FP exception flag and the
NumPy found at run time is older than 2.0; it does what a ufunc does after its loop under the
current ``np.errstate`` (see ``np.seterr``): ignore, warn (RuntimeWarning), raise
(FloatingPointError), call (``np.seterrcall`` function), print, or log (the object's ``write``).
"""

import sys
import warnings

import numpy as np

# NumPy's order and names (NPY_FPE_DIVIDEBYZERO=1, OVERFLOW=2, UNDERFLOW=4, INVALID=8).
_KINDS = ((1, "divide", "divide by zero"), (2, "over", "overflow"), (4, "under", "underflow"),
          (8, "invalid", "invalid value"))


def give_fp_errors(name: str, flags: int) -> None:
    modes = np.geterr()
    for bit, key, text in _KINDS:
        if not flags & bit:
            continue
        mode = modes[key]
        if mode == "ignore":
            continue
        msg = f"{text} encountered in {name}"
        if mode == "warn":
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        elif mode == "raise":
            raise FloatingPointError(msg)
        elif mode == "call":
            func = np.geterrcall()
            if func is None:
                raise ValueError(f"No callback set for {key} floating-point error")
            func(text, flags)
        elif mode == "print":
            sys.stdout.write(f"Warning: {msg}\n")
        elif mode == "log":
            obj = np.geterrcall()
            if obj is None:
                raise ValueError(f"No object with write method set for {key} floating-point error")
            obj.write(f"Warning: {msg}\n")
