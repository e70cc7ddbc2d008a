"""The `suf` command line.

  suf run --model M --text T    secure inference: dealer, then P0 and P1 as processes on localhost
  suf plan --model M --seq L    predicted comm, exchanges, key bytes and memory, without running
  suf deal --model M --seq L    the dealer alone: deployment, key files and client bundle
  suf serve --party 0|1 ...     one party (P0 listens and loads the weights; P1 connects with its
                                input and the client bundle)
  suf gate NAME [options]       one registered gate between two processes, with its cost report
  suf bench --model M ...       a grid of runs, Sigma and SUF side by side: report, JSON, plots
  suf certs --out DIR           test TLS certificates: a CA and one certificate + key per party
  suf demo                      a few gates between two processes (CPU)

Errors of the input (options, files, models, peers) are one line, `suf: error: ...`, exit code 2.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from suf.cli import bench, certs, deal, demo, gate, plan, run, serve
from suf.core.errors import SufError

COMMANDS = (run, plan, deal, serve, gate, bench, demo, certs)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="suf", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return ap


def _terminated(signum, frame):
    """SIGTERM ends the command like Ctrl-C would: files being written are dropped on the way
    out (a half-written key file is never left under its name)."""
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    try:
        return args.run(args)
    except SufError as e:
        print("suf: error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
