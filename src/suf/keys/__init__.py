"""Key storage: one party's FSS keys as a sequence of chunks, one per gate, used once.

`KeyFileWriter` / `KeyFileReader`: versioned, checksummed, memory-mapped key files (layout in
docs/keyfiles.md).  `MemoryKeys`: the same add/next API in memory.  Both readers hand out chunks
in order with `next(op) -> memoryview` or `next_tensor(op, dtype) -> torch.Tensor`."""
from suf.keys.format import ChunkInfo, KeyFileError, sigma_padded_size
from suf.keys.keyfile import DEPLOYMENT as DEPLOYMENT_KIND
from suf.keys.keyfile import ONE_TIME as ONE_TIME_KIND
from suf.keys.keyfile import (KeyFileInfo, KeyFileReader, KeyFileWriter, file_kind,
                              inspect_key_file, new_dealing_id, open_private, partial_path,
                              sweep_partials)
from suf.keys.memory import MemoryKeys

__all__ = ["DEPLOYMENT_KIND", "ONE_TIME_KIND", "ChunkInfo", "KeyFileError", "KeyFileInfo",
           "KeyFileReader", "KeyFileWriter", "MemoryKeys", "file_kind", "inspect_key_file",
           "new_dealing_id", "open_private", "partial_path", "sigma_padded_size",
           "sweep_partials"]
