"""suf.runtime.graphs.KeyTape: the key source of a recording.  It keeps every chunk it hands out;
a chunk outside GPU memory stops the recording (kept, so that the eager run after it gets it
again), and a non-strict rewind hands the kept chunks out again, then goes on with the keys."""
import pytest
import torch

from suf.keys import MemoryKeys
from suf.runtime.graphs import KeyTape


def _keys(n=3):
    store = MemoryKeys(0, 50, bytes(16), bytes(32))
    for i in range(n):
        store.add(f"op{i}", (i + 1,), torch.full((8 * (i + 1),), i, dtype=torch.uint8))
    store.close()
    return store.open(0)


def test_host_chunk_stops_recording_and_eager_run_continues():
    keys = _keys()
    tape = KeyTape(keys)
    assert tape.peek().op == "op0"
    with pytest.raises(RuntimeError, match="key chunk 'op0' is not in GPU memory"):
        tape.next_tensor("op0")
    assert keys.remaining == 2 and tape.unread == 0
    tape.rewind(strict=False)
    assert tape.unread == 1 and tape.peek().op == "op0"
    assert torch.equal(tape.next_tensor("op0"), torch.zeros(8, dtype=torch.uint8))
    assert tape.peek().op == "op1"  # now the party's keys again
    assert torch.equal(tape.next_tensor("op1", torch.int64), torch.full((2,), 0x0101010101010101))
    assert tape.next_tensor("op2").numel() == 24 and keys.remaining == 0 and tape.peek() is None


def test_strict_rewind_refuses_reads_beyond_or_out_of_order():
    tape = KeyTape(_keys())
    with pytest.raises(RuntimeError):
        tape.next_tensor("op0")
    tape.rewind(strict=True)
    with pytest.raises(RuntimeError, match="not oblivious"):
        tape.next_tensor("op1")
    tape.next_tensor("op0")
    assert tape.peek() is None
    with pytest.raises(RuntimeError, match="not oblivious"):
        tape.next_tensor("op1")
