"""Tunable constants, each defined once: chunk sizes of the CPU passes and the CUDA launch shapes.

Every module reads these from here at call time (``config.EVAL_CHUNK``, not a copy taken at import), so a test
or a user can change one with ``monkeypatch.setattr(microdl.config, "TILE", 2)`` and the next call uses it;
a CUDA kernel whose shared arrays depend on a shape is built by a cached factory keyed on it.
"""

from __future__ import annotations

# -- evaluation and prediction ------------------------------------------------------------------------------
#: Rows per forward pass when evaluating a loss on a whole dataset or predicting: bounds the activation
#: buffers that evaluation needs (on the GPU, a larger training batch capacity is used instead when there is
#: one). The result does not depend on it: :func:`microdl.train.evaluate_loss` adds the penalty once.
EVAL_CHUNK = 4096

# -- CPU row blocks (NOTE [row blocks] in microdl.nn._cpu) ----------------------------------------------------
#: Fewest rows, and fewest multiply-adds of its forward pass, that a row block is given: below these, waking
#: another thread costs more than it saves, so small batches and small networks run on fewer threads.
MIN_BLOCK_ROWS = 16
MIN_BLOCK_WORK = 1 << 19

# -- CUDA launch shapes (tests shrink them so that partial tiles and blocks run on tiny arrays) -----------------
#: Threads per block of the 1-D grid-stride kernels and reductions (a power of two): the optimizer steps,
#: clipping, the elementwise model kernels.
THREADS_PER_BLOCK = 256
#: Upper bound on the blocks of a 1-D grid-stride launch.
MAX_BLOCKS = 4096
#: Threads per side of a matrix-multiply block, and the depth of its K slices.
TILE = 16
#: Outputs per side computed by one matrix-multiply thread; a block computes a (TILE·REG)² tile of C.
REG = 4
#: Column-sum blocks: REDUCE_COLS adjacent columns (coalesced reads) × REDUCE_ROWS row strides (a power of two).
REDUCE_COLS = 32
REDUCE_ROWS = 8


def launch_1d(n: int) -> tuple[int, int]:
    """(blocks, threads per block) of a grid-stride launch over ``n`` items: enough blocks to cover them, at
    most MAX_BLOCKS. The optimizer steps, clipping and the model's elementwise kernels all use it."""
    return max(1, min(MAX_BLOCKS, -(-n // THREADS_PER_BLOCK))), THREADS_PER_BLOCK
