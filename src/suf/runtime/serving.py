"""One party of a job: its part once connected (`run_party`, the same in a process of its own and
in `run_locally`'s threads), and the party as a process of its own with its key file (`serve`,
what `suf serve` runs).

P0 (the model owner) listens, P1 (the client) connects; the handshake checks that both run the
same nonlinear and truncation modes and hold keys of the same dealing, made for the same job.  A
party refuses a key file dealt for another mode before opening it (so the file stays unused).
Each proves it holds the dealing's secret (the first chunk of its keys), so a stranger who
knows the public hello gets nothing.
Then: setup (a model's W^, a gate's masked inputs; counted apart), a sync, the online phase
(timed), and P1 unmasks the output with its output mask.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import time

import torch

from suf.core.errors import InputError, SufError
from suf.core.ring import low_mask
from suf.keys import KeyFileReader, inspect_key_file
from suf.mpc.party import Party
from suf.net.tls import TLSConfig
from suf.net.transport import Transport
from suf.runtime.graphs import prepare
from suf.runtime.jobs import OUTPUT_MASK, check_keys_mode, read_handshake_secret, read_masks


def parse_peer(peer: str) -> tuple[str, int]:
    """"HOST:PORT" -> (host, port)."""
    host, _, port = str(peer).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"peer must be HOST:PORT with a port in 1..65535, got {peer!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine's loopback interface ("localhost", 127.0.0.0/8, ::1).
    A listening address such as 0.0.0.0 is not: it accepts peers from the network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def channel_policy(peer: str, tls: TLSConfig | None, insecure_plaintext: bool = False) -> str:
    """The channel a party uses with `peer` (HOST:PORT): "tls" when it has certificates;
    "plaintext" on loopback; for any other peer without certificates, InputError unless
    `insecure_plaintext` ("insecure-plaintext": the caller warns)."""
    host, _ = parse_peer(peer)
    if tls is not None:
        if insecure_plaintext:
            raise InputError("--insecure-plaintext and certificates (--cert, --key, --peer-ca) "
                             "contradict each other: give one or the other")
        return "tls"
    if is_loopback(host):
        return "plaintext"
    if insecure_plaintext:
        return "insecure-plaintext"
    raise InputError(f"the peer address {host} is not loopback, so the channel needs TLS: give "
                     f"--cert, --key and --peer-ca (make test ones with `suf certs --out DIR`), "
                     f"or --insecure-plaintext to send in the clear")


def hello(job, dealing_id: bytes, model_hash: bytes) -> dict:
    """What a party's handshake says: its nonlinear and truncation modes first (the first
    difference is the one reported), then its keys' dealing and model hash."""
    return {"nonlinear": job.nonlinear, "truncation": job.truncation,
            "dealing_id": dealing_id.hex(),
            "model_hash": model_hash.hex()}


def ready(party: Party) -> None:
    """A one-byte sync before the online phase (setup, op "ready"): both parties start their
    online clocks together, after both have the published weights."""
    with party.transport.stats.scope(op="ready", phase="setup"):
        party.transport.sync()


def run_party(party: Party, job, values, graphs: bool = True) -> tuple[torch.Tensor, float, dict]:
    """One party's part of `job` with its keys (party.keys) over its transport; `values`: its
    cleartext inputs (`job.values`).  On a GPU with `graphs`, the online computation is recorded
    as CUDA graphs in setup (suf.runtime.graphs).  Returns (y, online seconds, how the online
    phase ran: suf.runtime.graphs' report): P1's y is the output, P0's is the masked y^ (it never
    sees y)."""
    state = job.setup(party, values)
    online = prepare(party, job, state, graphs)
    ready(party)
    party.keys.spend()  # one-time keys: spent now, right before the first online exchange
    t0 = time.perf_counter()
    y = online.run(values)
    if party.id == 1:
        y = (y - read_masks(party.keys, OUTPUT_MASK, [tuple(y.shape)], party.device)[0]) \
            & low_mask(job.out_bits)
    if party.device.type == "cuda":
        torch.cuda.current_stream(party.device).synchronize()
    online_s = time.perf_counter() - t0
    if party.keys.remaining:
        raise RuntimeError(f"party {party.id} left {party.keys.remaining} key chunks unused")
    return y, online_s, online.report


def load_keys(reader: KeyFileReader, dev: torch.device):
    """A party copies its whole key file into its device's memory (checksums verified) before
    the online phase, when it fits: on a GPU in 80% of the free GPU memory, on the CPU in 40% of
    the available RAM; otherwise chunks are read (and checked) from the memory-mapped file as the
    gates need them.  Returns (keys, seconds spent)."""
    if dev.type == "cuda":
        room = 0.8 * torch.cuda.mem_get_info(dev)[0]
    else:
        try:
            room = 0.4 * os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            room = 0
    if reader.payload_bytes > room:
        return reader, 0.0
    t0 = time.perf_counter()
    keys = reader.load(dev)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return keys, time.perf_counter() - t0


@contextlib.contextmanager
def _saying_whether_spent(reservation):
    """A SufError leaving the block says whether the key file was spent (stamped right before
    the first online exchange) or stays usable (any failure before it)."""
    try:
        yield
    except SufError as e:
        if e.args and isinstance(e.args[0], str):
            state = ("the keys are spent: deal new ones" if reservation.spent else
                     "the keys were not used: they stay usable")
            e.args = (f"{e.args[0]} ({state})",) + e.args[1:]
        raise


def serve(party: int, job, keys, peer: str, values=None, *, device="cpu",
          timeout: float = 60.0, tls: TLSConfig | None = None,
          insecure_plaintext: bool = False, graphs: bool = True) -> dict:
    """One party of `job` with its key file `keys`: P0 listens at `peer` (HOST:PORT), P1
    connects to it; over TLS 1.3 with mutual authentication when `tls` is given, which a peer
    that is not on loopback requires unless `insecure_plaintext` (`channel_policy`).  `values`:
    the party's cleartext inputs (`job.values(source)`).  KeyFileError, before the file is used,
    if it was dealt for another nonlinear or truncation mode than the job's.  The key file is
    locked while the party runs and stamped used right before the first online exchange: an
    error says whether it was (any failure before leaves the keys usable).  Returns the party's
    measured cost report (and P1's output, ring values)."""
    host, port = parse_peer(peer)
    channel_policy(peer, tls, insecure_plaintext)
    dev = torch.device(device)
    check_keys_mode(inspect_key_file(keys).meta, job.nonlinear, job.truncation, f"key file {keys}")
    with KeyFileReader(keys, party, model_hash=job.key_hash(), ring_bits=job.bits,
                       spend_at_open=False) as reader, _saying_whether_spent(reader.reservation):
        said = hello(job, reader.dealing_id, reader.model_hash)
        secret = read_handshake_secret(reader)
        try:
            if party == 0:
                transport = Transport.listen(host, port, party=0, hello=said, timeout=timeout,
                                             tls=tls, secret=secret)
            else:
                transport = Transport.connect(host, port, party=1, hello=said, timeout=timeout,
                                              tls=tls, secret=secret)
        except OSError as e:
            if isinstance(e, SufError):
                raise
            raise InputError(f"cannot listen on {peer}: {e}") from None
        keys_in, load_s = load_keys(reader, dev)
        # on a GPU the party runs on a stream of its own (CUDA graphs are recorded on one)
        stream = torch.cuda.Stream(dev) if dev.type == "cuda" else None
        with Party(party, transport, keys_in, dev) as p, \
                (torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()):
            y, online_s, how = run_party(p, job, values, graphs)
        result = {"party": party, "online_s": online_s, "key_load_s": load_s, **how,
                  "keys_in": "file" if keys_in is reader else str(dev),
                  "channel": transport.tls or "plaintext",
                  "stats": transport.stats.to_dict()}
    if party == 1:
        result["output"] = y.cpu().tolist()
    return result
