"""Runs a command on a pseudo-terminal of a given width and returns its exit
code and everything it drew (the CLI tests of the progress display)."""
import fcntl
import os
import pty
import struct
import termios


def run(argv, cols, rows=24):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.pop("COLUMNS", None)  # the width must come from the terminal
        os.execv(argv[0], argv)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")
