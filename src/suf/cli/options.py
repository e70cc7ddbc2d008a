"""What the commands share about their options: value types that refuse bad values in argparse's
one line, and `loading`, which turns the built-in errors of reading what the user named (a file,
a model, JSON) into one-line errors."""
from __future__ import annotations

import argparse
import contextlib

from suf.core.config import NONLINEAR_MODES, TRUNCATION_MODES
from suf.core.errors import InputError, SufError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def peer(text: str) -> str:
    from suf.runtime.serving import parse_peer

    try:
        parse_peer(text)
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def torch_device(text: str) -> str:
    import torch

    try:
        dev = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text}: torch sees no CUDA device here")
    if dev.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"{text}: suf runs on cpu or cuda")
    return text


def seed(text: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise argparse.ArgumentTypeError(f"must be 32 bytes in hex (64 digits), got {text!r}")
    return value


@contextlib.contextmanager
def loading(what: str):
    """Inside: reading what the user named as `what` (e.g. "--keys k.suk").  A ValueError,
    TypeError or OSError raised there is the user's input, not a bug: it becomes an InputError
    (one line); suf's own errors pass as they are."""
    try:
        yield
    except SufError:
        raise
    except OSError as e:
        detail = f"{e.strerror}: {e.filename}" if e.strerror and e.filename else str(e)
        raise InputError(f"{what}: {detail}") from e
    except (ValueError, TypeError) as e:
        raise InputError(f"{what}: {e}") from e


def add_nonlinear_option(p, extra: str = "") -> None:
    """--nonlinear sigma|suf: SIGMA's nonlinear gates (the default) or the SUF-compiled ones."""
    p.add_argument("--nonlinear", choices=NONLINEAR_MODES, default="sigma",
                   help="the nonlinear gates: sigma (SIGMA's, the default) or suf (the "
                        "SUF-compiled suf_gelu, suf_silu, suf_nexp, suf_inverse, suf_rsqrt)"
                        + extra)


def add_truncation_option(p, extra: str = "") -> None:
    """--truncation faithful|gap: SIGMA's TrFloor after every product (the default) or
    TrWithSlack (docs/truncation.md)."""
    p.add_argument("--truncation", choices=TRUNCATION_MODES, default="faithful",
                   help="the truncation of products and LayerNorm means: faithful (SIGMA's "
                        "TrFloor, the default) or gap (TrWithSlack: exact while |value| < "
                        "2^(n-2), which the reference checks)" + extra)


def add_graphs_option(p) -> None:
    """--no-cuda-graphs: run a GPU party's online phase kernel by kernel (suf.runtime.graphs)."""
    p.add_argument("--no-cuda-graphs", dest="graphs", action="store_false",
                   help="on a GPU, run the online phase kernel by kernel instead of replaying "
                        "the CUDA graphs recorded in setup (the default; same output and bytes)")


def add_tls_options(p) -> None:
    """--cert, --key, --peer-ca and --insecure-plaintext (`suf serve`)."""
    p.add_argument("--cert", help="TLS: this party's certificate (PEM; `suf certs` makes test ones)")
    p.add_argument("--key", help="TLS: this party's private key (PEM)")
    p.add_argument("--peer-ca", help="TLS: the CA certificate (PEM) that signed the peer's "
                                     "certificate; the only one trusted")
    p.add_argument("--insecure-plaintext", action="store_true",
                   help="allow a plaintext channel to a peer that is not on loopback (warns)")


def tls_config(args, peer_address: str):
    """The TLSConfig of the --cert, --key, --peer-ca options (all three or none), after the
    policy: TLS whenever certificates are given; without them, plaintext on loopback only,
    unless --insecure-plaintext (which prints a warning)."""
    import sys

    from suf.net.tls import TLSConfig
    from suf.runtime.serving import channel_policy

    names = {"--cert": args.cert, "--key": args.key, "--peer-ca": args.peer_ca}
    given = [n for n, v in names.items() if v is not None]
    if given and len(given) < 3:
        missing = ", ".join(n for n in names if names[n] is None)
        raise InputError(f"--cert, --key and --peer-ca go together: missing {missing}")
    tls = TLSConfig(args.cert, args.key, args.peer_ca) if given else None
    if channel_policy(peer_address, tls, args.insecure_plaintext) == "insecure-plaintext":
        print(f"suf: warning: plaintext channel with --peer {peer_address}: whoever is on the "
              f"network path can read and change every value exchanged", file=sys.stderr)
    return tls
