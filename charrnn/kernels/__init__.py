"""Every compiled (Numba) function of charrnn lives in this package, and no other module imports numba.

Letters used in shapes, declared once:
    B batch (parallel streams) · T time steps in a chunk · H hidden units · V vocabulary size
    L layers · N = T·B positions in a chunk · K streams advanced one step at a time (sampling, coding).

The model (row-vector convention, x_t one-hot so x_t·Wx is the row Wx[id]):
    layer 1:     h1_t = f(Wx[x_t] + bh[0] + h1_{t-1}·Wh[0])
    layer l > 1: hl_t = f(h(l-1)_t·Wu[l-2] + bh[l-1] + hl_{t-1}·Wh[l-1])
    output:      p_t  = softmax(hL_t·Wy + by)

One home per concern, each module readable on its own:

    blas         the gemm binding (numpy's OpenBLAS), the one small-product path, threads and shards
    elementwise  activations, the vectorised exp, dropout masks
    inputs       what feeds layer 1: the one-hot row lookup and its scatter-add gradient; a dense input
    rnn          the recurrence, once: `_layer_step`, the layer-stack forward/backward over precomputed
                 layer-1 inputs, and `_stack_step`, the single step that sampling, scoring and coding call
    heads        the softmax head: `_log_normaliser` (the only log-sum-exp), cross-entropy and its gradient;
                 the regression head: a linear map and the squared error (series models)
    lm           the character language model's loss and gradients: inputs → rnn → head, sharded
    series       the series model's: dense inputs → rnn (one stack per layer width) → regression head,
                 sharded; predictions and iterated forecasts (`_stack_step` from the carried state)
    optim        gradient norm, clipping, Adam / RMSprop / Adagrad / SGD
    sampling     the random generator, ranking, the draw, the whole sampling loop
    scoring      log-probabilities of a text, chunked (fast) or one step at a time (the sampler's step)
    strict       strict twins: the same kernels compiled without fastmath, bit-identical on every CPU
    coding       arithmetic coding: integer frequencies from the strict step, the range coder

Documents (independent sequences packed into the rows of a chunk, charrnn/documents.py) use the same
kernels with two optional (B, T) arrays: `resets` (rnn: where a row starts a document, its previous
state counts as zero, forward and backward) and `weights` (heads: 0 on padding). Left out (None), numba
compiles them away, so stream training runs the code it ran before.

Hidden states are stored time-major, (L, T, B, H), so each step's (B, H) slab is contiguous and every
product is a plain BLAS call. Only the recurrence h_{t-1} -> h_t is sequential; the input rows of upper
layers, the output projection, the softmax and every weight gradient run over all N positions at once.

Kernels are private (`_name`) and called only by typed wrappers outside this package. They read no
globals except the compile-time constants below (numba freezes globals at compile time, and
`cache=True` persists them), allocate nothing inside time loops, and take every setting as an argument.
Every kernel has a slow NumPy twin in tests/reference.py (tests/test_twins.py fails when one is missing).
"""

# fastmath without 'nnan'/'ninf': NaN and inf must survive so the divergence guard can see them.
FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}

# Activation codes (an int argument, not a function argument, so kernels stay cacheable).
ACT_TANH = 0  # tanh by a rational approximation: vectorises, |error| < 3e-7 (float32 training)
ACT_RELU = 1
ACT_TANH_EXACT = 2  # libm tanh: exact to the last bit (float64, gradient checks)

_MODULES = (
    "blas", "elementwise", "inputs", "rnn", "heads", "lm", "series", "optim", "sampling", "scoring", "strict", "coding",
)  # fmt: skip


def __getattr__(name: str):
    """`kernels.rnn` and the like import on first use, so a command compiles and loads only what it calls."""
    if name in _MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
