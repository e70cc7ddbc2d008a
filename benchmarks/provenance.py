"""The benchmark scripts' name for suf.bench.provenance: the tree that ran and the machine, in
every result file."""
from suf.bench.provenance import cpu_name, machine, src_sha256, stamp  # noqa: F401
