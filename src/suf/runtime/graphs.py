"""A GPU party's online computation recorded as CUDA graphs in setup, replayed around the exchanges.

The online computation of a party is oblivious: which kernels run, on which shapes, in which
order, and where it exchanges, depends on the job (model, batch, length, modes) and never on a
value.  So before the online clock, and before the client's input is known, the party runs
`job.compute` twice on placeholder inputs with its real keys (`KeyTape` hands the same key tensors
out twice):

  1. a rehearsal, eagerly, with a stand-in transport that answers every exchange with zeros: every
     Triton kernel is compiled and loaded, every per-device table cached, cuBLAS set up;
  2. the recording: each stretch of local work between two exchanges is captured as one CUDA graph
     (one memory pool, replayed in capture order), ending in the packed message it sends; the
     peer's message arrives in a fixed buffer that the next graph unpacks.

Online, the party exchanges its inputs, copies them into the placeholders and replays: graph,
exchange, graph, ..., so an exchange costs one graph launch, one copy to pinned host memory, the
socket round trip and one queued copy back, instead of tens of kernel launches from Python.  The
bytes and the order of the exchanges are those of the eager run (the counters count them in the
same scopes); the output is the same bit for bit (tests/gpu/test_graphs.py).

Graphs need the keys in GPU memory (a party reading its keys from the file while it runs stays
eager) and memory for the graphs' pool; any failure to record falls back to the eager online
phase, and the party's report says why.
"""
from __future__ import annotations

import math
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from suf.core.ring import pack, packed_size, unpack
from suf.mpc.party import Party
from suf.net.stats import Stats

_RECORDING = threading.Lock()  # one party of a process records at a time (run_locally: two)


class KeyTape:
    """A key source over the party's keys that keeps every chunk it hands out.  After
    `rewind(strict=True)` it hands the same tensors out again, in the same order, and refuses any
    other read (the recording must read what the rehearsal read); after `rewind(strict=False)` it
    goes on with the party's keys once the kept ones are used (an eager run after a failed
    recording)."""

    def __init__(self, keys):
        self._keys = keys
        self._tape: list = []  # (ChunkInfo, op, dtype, tensor)
        self._pos: int | None = None  # None: reading the party's keys
        self._strict = False

    def peek(self):
        if self._pos is None or self._pos >= len(self._tape):
            return None if self._strict else self._keys.peek()
        return self._tape[self._pos][0]

    def next_tensor(self, op: str, dtype: torch.dtype = torch.uint8, shape=None) -> torch.Tensor:
        if self._pos is None:
            info = self._keys.peek()
            t = self._keys.next_tensor(op, dtype, shape)
            self._tape.append((info, op, dtype, t))
            if t.device.type != "cuda":
                raise _NotRecordable(f"key chunk {op!r} is not in GPU memory")
            return t
        if self._pos >= len(self._tape) and not self._strict:
            return self._keys.next_tensor(op, dtype, shape)
        if self._pos >= len(self._tape) or self._tape[self._pos][1:3] != (op, dtype):
            raise RuntimeError(f"the recording read key chunk {op!r} where the rehearsal read "
                               f"another: the computation is not oblivious")
        self._pos += 1
        return self._tape[self._pos - 1][3]

    def rewind(self, strict: bool) -> None:
        self._pos, self._strict = 0, strict

    @property
    def unread(self) -> int:
        """Kept chunks not handed out again yet."""
        return 0 if self._pos is None else max(len(self._tape) - self._pos, 0)


class _NotRecordable(RuntimeError):
    """This job cannot be recorded here (the reason is reported, the party runs eagerly)."""


class _Rehearsal:
    """The stand-in transport of the rehearsal: packs what it would send (compiling the packing
    kernels) and receives zeros."""

    def __init__(self):
        self.stats = Stats()
        self.largest = 0

    def exchange_values(self, x: torch.Tensor, bits: int, type_bytes: int = 8) -> torch.Tensor:
        buf = pack(x, bits, type_bytes)
        self.largest = max(self.largest, buf.numel())
        return unpack(torch.zeros_like(buf), bits, x.numel(), type_bytes).reshape(x.shape)


@dataclass
class _Step:
    graph: torch.cuda.CUDAGraph
    send: torch.Tensor | None   # pinned host bytes the graph leaves to send (None: the last one)
    recv: torch.Tensor | None   # pinned host bytes the peer's message goes to (the next graph
    path: tuple                 # copies them to the GPU); the scopes of the exchange (Stats.path)


class _Recorder:
    """The stand-in transport of the recording.  At each exchange the current graph ends with the
    copy of the packed message to a pinned host buffer, and the next one starts with the copy of
    the peer's message from another; both buffers are the size of the largest message and serve
    every exchange (graph k has copied `recv` to the GPU before the socket overwrites it in
    exchange k, as the replay waits for graph k to finish first)."""

    def __init__(self, device: torch.device, largest: int):
        self.stats = Stats()
        self.device = device
        self.pool = torch.cuda.graph_pool_handle()
        self.steps: list[_Step] = []
        self.host_out = torch.empty(largest, dtype=torch.uint8, pin_memory=True)
        self.host_in = torch.empty(largest, dtype=torch.uint8, pin_memory=True)
        self._graph: torch.cuda.CUDAGraph | None = None

    def begin(self) -> None:
        self._graph = torch.cuda.CUDAGraph()
        self._graph.capture_begin(pool=self.pool, capture_error_mode="thread_local")

    def end(self) -> _Step:
        """End the current graph: its step, still without a message (the last one has none)."""
        graph, self._graph = self._graph, None
        graph.capture_end()
        self.steps.append(_Step(graph, None, None, self.stats.path()))
        return self.steps[-1]

    def abort(self) -> None:
        """After a failure inside a capture: end it (its graph is dropped)."""
        graph, self._graph = self._graph, None
        if graph is not None:
            try:
                graph.capture_end()
            except RuntimeError:
                pass

    def exchange_values(self, x: torch.Tensor, bits: int, type_bytes: int = 8) -> torch.Tensor:
        buf = pack(x, bits, type_bytes)
        n = buf.numel()
        if n == 0:
            return torch.zeros_like(x)
        send, recv = self.host_out[:n], self.host_in[:n]
        send.copy_(buf, non_blocking=True)
        step = self.end()
        step.send, step.recv = send, recv
        self.begin()
        peer = torch.empty_like(buf)
        peer.copy_(recv, non_blocking=True)
        return unpack(peer, bits, x.numel(), type_bytes).reshape(x.shape)


class EagerOnline:
    """The online phase run eagerly (kernel by kernel from Python): `job.online` with the input
    masks and keys where recording left them, if it was tried."""

    def __init__(self, party: Party, job, state, report: dict, masks=None, keys=None):
        self.party = party if keys is None else Party(party.id, party.transport, keys,
                                                      party.device)
        self.job, self.state, self.masks, self.report = job, state, masks, report

    def run(self, values) -> torch.Tensor:
        hats = self.job.online_inputs(self.party, self.state, values, self.masks)
        return self.job.compute(self.party, self.state, hats)


class RecordedOnline:
    """A job's online computation for one party, recorded in setup (`prepare`), replayed by
    `run` around the exchanges."""

    def __init__(self, party: Party, job, state, masks, placeholders, steps, output,
                 record_s: float):
        self.party, self.job, self.state, self.masks = party, job, state, masks
        self.placeholders, self.steps, self.output = placeholders, steps, output
        self.report = {"online": "cuda-graphs", "graphs": len(steps), "record_s": record_s}

    def run(self, values) -> torch.Tensor:
        """The online phase: the inputs' exchange, then the graphs and the exchanges between
        them; returns the masked output (a fresh tensor)."""
        party = self.party
        hats = self.job.online_inputs(party, self.state, values, self.masks)
        for ph, h in zip(self.placeholders, hats):
            ph.copy_(h)
        t, stream = party.transport, torch.cuda.current_stream(party.device)
        with t.stats.following() as go:
            for step in self.steps:
                go(step.path)
                step.graph.replay()
                if step.send is not None:
                    stream.synchronize()  # the message is in pinned memory
                    t.exchange(step.send, out=step.recv)
        return self.output.clone()


def _record(party: Party, job, state, masks, tape: KeyTape) -> RecordedOnline:
    """The rehearsal and the recording of `job.compute` on placeholder inputs."""
    dev = party.device
    if torch.cuda.current_stream(dev) == torch.cuda.default_stream(dev):
        raise _NotRecordable("the party runs on the default CUDA stream")
    t0 = time.perf_counter()
    placeholders = [torch.zeros(tuple(i.shape), dtype=torch.int64, device=dev)
                    for i in job.inputs]
    rehearsal = _Rehearsal()
    job.compute(Party(party.id, rehearsal, tape, dev), state, placeholders)
    tape.rewind(strict=True)
    torch.cuda.current_stream(dev).synchronize()
    recorder = _Recorder(dev, rehearsal.largest)
    try:
        recorder.begin()
        out = job.compute(Party(party.id, recorder, tape, dev), state, placeholders)
        recorder.end()
    except BaseException:
        recorder.abort()
        raise
    # the inputs' message goes through the transport's own pinned buffers: made now, not online
    party.transport.reserve(max(packed_size(i.bits, math.prod(i.shape)) for i in job.inputs))
    if tape.unread:
        raise RuntimeError(f"the recording left {tape.unread} key chunks of the rehearsal "
                           f"unread: the computation is not oblivious")
    torch.cuda.current_stream(dev).synchronize()
    return RecordedOnline(party, job, state, masks, placeholders, recorder.steps, out,
                          time.perf_counter() - t0)


def prepare(party: Party, job, state, enabled: bool = True) -> RecordedOnline | EagerOnline:
    """In setup, before the clock: the party's online phase, recorded as CUDA graphs when
    `enabled`, the device is CUDA and recording succeeds; otherwise eager.  Its `report` says
    which ("online": "cuda-graphs" | "eager", and why not graphs)."""
    if not enabled:
        return EagerOnline(party, job, state, {"online": "eager", "why": "graphs off"})
    if party.device.type != "cuda":
        return EagerOnline(party, job, state,
                           {"online": "eager", "why": f"device {party.device.type}"})
    with _RECORDING:
        masks = job.input_masks(party)
        tape = KeyTape(party.keys)
        try:
            return _record(party, job, state, masks, tape)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as e:
            torch.cuda.synchronize(party.device)
            tape.rewind(strict=False)
            return EagerOnline(party, job, state,
                               {"online": "eager", "why": f"recording failed {_where(e)}"},
                               masks, tape)


def _where(e: BaseException) -> str:
    """'at FILE:LINE (in suf) : the error's first line', for the report of a failed recording."""
    here = os.sep + "suf" + os.sep
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if here in f.filename and not f.filename.endswith("graphs.py")]
    at = f"at {Path(frames[-1].filename).name}:{frames[-1].lineno}: " if frames else ""
    return at + (str(e).strip().splitlines() or [type(e).__name__])[0]
