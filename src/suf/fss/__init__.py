"""Batched FSS primitives in torch (the pure-torch reference path; fused kernels plug in behind them).

dpf      BGI DPF with early termination (SIGMA's layout): keygen, eval_point, eval_all, key bytes
compare  1{x < α} from the same DPF key by prefix parity (SIGMA's DReLU "DCF")
lut      SIGMA's DPF eval-all table lookup (FSS part): (u, v) shares and the sign-bit map
sstable  128-bit block helpers and the secret-shared truth tables used for n <= 7
"""
from suf.fss import compare, dpf, lut, sstable
from suf.fss.dpf import DPFKey
from suf.fss.lut import LUTKey
from suf.fss.sstable import TableKey

__all__ = ["compare", "dpf", "lut", "sstable", "DPFKey", "LUTKey", "TableKey"]
