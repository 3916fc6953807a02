"""Open the course in JupyterLab: the step `make lab` runs once the set-up is done.

    .venv/bin/python tools/lab.py [FOLDER] [JUPYTERLAB OPTION ...]    # FOLDER: . (the repository)

Starts `jupyter lab FOLDER` with this interpreter (so with the course's environment), adding an
option only where the machine needs it:

- ``--allow-root`` when run as root, with one line saying why: JupyterLab refuses to start as root
  without it ("Running as root is not recommended"). On a fresh Debian machine or in a container
  the learner often is root. Never added for other users.
- ``--no-browser`` when there is no display to open a browser on (Linux without ``DISPLAY`` or
  ``WAYLAND_DISPLAY``: over ssh, in a container, in CI). Otherwise JupyterLab would try, and may
  start a text-mode browser (lynx, w3m) in the terminal.

Either way JupyterLab prints the URL to open, with its token
(``http://localhost:8888/lab?token=...``). When the port asked for is taken, JupyterLab tries the
next ones (``ServerApp.port_retries``, 50 by default), says "The port 8888 is already in use,
trying another port." and prints the URL of the port it got.

Options after FOLDER go to JupyterLab unchanged; `make lab LAB_PORT=8890 LAB_ARGS=...` passes them
here. An option given explicitly is not added twice.

What it trades away: it replaces itself with JupyterLab (``os.execv``) rather than supervising it,
so Ctrl-C, the exit code and the process id are JupyterLab's own, and it cannot reword
JupyterLab's output.
"""

from __future__ import annotations

import os
import sys

DEFAULT_FOLDER = "."


def has_display(environ, platform):
    """Whether a browser could open a window: macOS and Windows always can; elsewhere (Linux, BSD)
    only with an X11 or Wayland display."""
    if platform == "darwin" or platform.startswith("win"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def lab_command(args, *, euid, environ, platform, python=sys.executable):
    """The JupyterLab command line for ``args`` (``[FOLDER, OPTION ...]``) on this machine.

    Returns ``(argv, notes)``: ``argv`` runs JupyterLab with ``python``; ``notes`` are the lines to
    print first, one for each option added and why. ``euid`` is ``os.geteuid()`` (``None`` where
    there is none, as on Windows).
    """
    args = list(args)
    if not args or args[0].startswith("-"):
        args.insert(0, DEFAULT_FOLDER)
    notes = []
    if euid == 0 and "--allow-root" not in args:
        args.append("--allow-root")
        notes.append("Running as root, so adding --allow-root: JupyterLab refuses to start as root "
                     "without it (as an ordinary user it is not needed).")
    if not has_display(environ, platform) and "--no-browser" not in args:
        args.append("--no-browser")
        notes.append("No display (DISPLAY and WAYLAND_DISPLAY are unset), so no browser is "
                     "opened: open the URL with the token that JupyterLab prints below.")
    return [python, "-m", "jupyterlab", *args], notes


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    euid = os.geteuid() if hasattr(os, "geteuid") else None
    command, notes = lab_command(argv, euid=euid, environ=os.environ, platform=sys.platform)
    for note in notes:
        print(note)
    sys.stdout.flush()
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
