"""The project's PRG: ChaCha12 on CPU and GPU with identical bits (suf.prg.chacha), the dealer's
stream (suf.prg.stream) and its Triton kernels (suf.prg.kernels)."""
from suf.prg.chacha import CONSTANTS, ROUNDS, block_words, chacha_block, expand, words_block
from suf.prg.stream import Stream

__all__ = ["CONSTANTS", "ROUNDS", "Stream", "block_words", "chacha_block", "expand",
           "words_block"]
