"""Estimate of the interpreter's own slow-down while a profile hook is set.

Not calibrated yet: interp_ratio() returns 0, so pollution()["interp_s"] is
0 and "pct" counts only the hook and flusher time yprof measures. See
docs/api.md ("Pollution") for what that leaves out.
"""


def interp_ratio():
    """Extra interpreter time per second spent in the hook (>= 0)."""
    return 0.0
