"""Imported at interpreter start-up by yprof_control.pth when YPROF_CONTROL
is set (and not 0): opens the process's control channel and records
nothing until told; or when YPROF_FOLLOW is set (a parent recording with
follow_children=True): records this process (_follow.child_start). Never
raises: what cannot be done is said in one line on stderr, and the program
runs on."""
import os


def _open():
    try:
        from . import _control
        try:
            _control.serve()
        except _control.Refused as e:
            _control.say("control channel not opened: %s" % e)
    except Exception as e:  # pragma: no cover - a broken install
        import sys
        try:
            sys.stderr.write("yprof: control channel not opened: %s: %s\n" % (type(e).__name__, e))
        except Exception:
            pass


if os.environ.get("YPROF_CONTROL", "").strip() not in ("", "0"):
    _open()
if os.environ.get("YPROF_FOLLOW"):
    from . import _follow
    _follow.child_start()
