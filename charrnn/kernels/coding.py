"""Arithmetic coding with the model: integer frequencies from the strict single step, and a range coder.

Everything here is compiled without fastmath and calls only strict twins (strict.py), so the encoder and
the decoder — the same kernels, `_frequencies` and `_advance`, in both directions — derive the same
frequencies on any CPU. Per character:

    freq = _frequencies(state)        the head: `_bias_max`, `_log_normaliser` (its exps and sum), quantised
    code the character with freq      (or the escape symbol, then the character outside the vocabulary)
    state = _advance(state, char)     the row lookup and `rnn._stack_step`, the sampler's step

Frequencies (total 2^24 = TOTAL): the V characters of the vocabulary and one escape symbol. The escape
gets e = clamp(TOTAL·escapes/(coded + 1), 1, TOTAL - TOTAL/64) (1 until the first escape: a text inside
the vocabulary pays about n·2^-24 bits in all for it); character v gets 1 + floor(p_v·(TOTAL - e - V))
with p_v = exp(logit_v - max) / Σ, and what the floors leave goes to the most likely character. So every
character costs at most -log2(p_v) + log2(TOTAL/(TOTAL - e - V)) bits: 6e-6 bits above its surprisal
for V = 65 before the first escape. A character outside the vocabulary does not move the model's state;
after the escape it is coded among those seen before (counts; 'new' weighs as many as there are
distinct ones, PPM's method C), and a new one as a code point, uniform over the 0x110000 of Unicode.

The range coder is LZMA's (carry by a cached byte and a count of pending 0xFF bytes) widened from 32 to
56 bits: low < 2^57 (56 bits and a carry) and 2^48 <= range < 2^56 after normalisation, all in int64, so
a symbol's interval is range // total · freq with at most total/range <= 2^-24 of the range unused (the
last symbol of a table takes that remainder). The first byte of the stream, always 0, is not written,
and the flush writes only the bytes needed to pin the final interval (the decoder reads zeros past the
end), so the payload is the information content plus one or two bytes.
"""

import numpy as np
from numba import njit

from . import blas, heads, inputs, lm, optim, rnn
from .strict import STRICT_OPTIONS, strict

_lookup = strict(inputs._lookup)
_stack_step = strict(rnn._stack_step)
_product = strict(blas._fixed_gemm)
_bias_max = strict(heads._bias_max)
_log_normaliser = strict(heads._log_normaliser)
_loss_and_grads = strict(lm._loss_and_grads)  # adaptive coding: training's own forward and BPTT
_global_norm = strict(optim._global_norm)
_clip = strict(optim._clip)

TOTAL_BITS = 24
TOTAL = 1 << TOTAL_BITS  # the model's frequencies (vocabulary + escape) add up to this
ESCAPE_CAP = TOTAL - TOTAL // 64  # so at least 2^18 units remain for the vocabulary
MAX_VOCAB = TOTAL // 128  # leaves every character at least a floor of 1 under the escape cap
OOV_SLOTS = 256  # distinct out-of-vocabulary characters remembered (the rest are spelt each time)
OOV_TOTAL_LIMIT = 1 << 16  # halve their counts beyond this
CODE_POINTS = 0x110000
CODER_BYTES = 7  # the 56-bit window
ADAPT_CLIP = 1.0  # adaptive coding: the global norm each update's gradient is clipped to
_TOP = 1 << 56
_BOTTOM = 1 << 48
_LOW48 = _BOTTOM - 1
_FF_BOUND = 0xFF << 48
ENCODER_START = (0, _TOP - 1, 0, 1, -1)

# counters (4,) int64: [symbols coded, escapes, distinct out-of-vocabulary characters remembered,
#                       vocabulary characters read by the model]
# encoder rc (5,) int64: [low, range, cached byte, pending bytes (cached + 0xFF run), bytes written]
#   starts as START = [0, 2^56 - 1, 0, 1, -1]: LZMA's virtual leading zero byte, counted but not written
# decoder rd (4,) int64: [code - low, range, bytes read (past the end: zeros), corrupt flag]


@njit(**STRICT_OPTIONS)
def _frequencies(h_top, Wy, by, logits, freq, escape):
    """freq (V+1,) int64 := the quantised next-character distribution (module docstring) at the top
    layer's state h_top (1, H), with `escape` units for the escape symbol (last). logits (1, V) scratch
    in the model's dtype. A non-finite row (a diverged model) codes uniformly, the same on both sides."""
    V = by.size
    _product(h_top, Wy, logits, False, False, 0.0)
    row = logits[0]
    top = _bias_max(row, by)
    _, exps = _log_normaliser(row, top)  # the exps, in place, and their sum (its log, from libm, is not used)
    total = float(exps)
    budget = TOTAL - escape
    freq[V] = escape
    if not (total >= 1.0 and total <= V):  # the maximum contributes exp(0) = 1; NaN fails both
        for v in range(V):
            freq[v] = budget // V
        freq[0] += budget - (budget // V) * V
        return
    scale = float(budget - V) / total
    used = 0
    best = 0
    for v in range(V):
        f = 1 + np.int64(float(row[v]) * scale)
        freq[v] = f
        used += f
        if f > freq[best]:
            best = v
    freq[best] += budget - used


@njit(**STRICT_OPTIONS)
def _escape_frequency(counters):
    """Units of TOTAL for the escape symbol, from the escapes seen so far (module docstring)."""
    return max(1, min(ESCAPE_CAP, (TOTAL * counters[1]) // (counters[0] + 1)))


@njit(**STRICT_OPTIONS)
def _advance(char, Wx, Wu, Wh, bh, h, pre, tmp, one_id, act):
    """Feed vocabulary id `char` to the model: state h (L, 1, H) moves one step, in place. pre (1, 1, H),
    tmp (1, H) scratch; one_id (1, 1) int64 scratch."""
    one_id[0, 0] = char
    _lookup(one_id, Wx, pre)
    _stack_step(pre[0], Wu, Wh, bh, h, tmp, act)


@njit(**STRICT_OPTIONS)
def _learn(char, Wx, Wu, Wh, bh, Wy, by, h, act, counters, window, lr, learner):
    """Adaptive coding (window > 0), called before the model reads vocabulary id `char`: the ids go into a
    history, and once window + 1 of them are there (x = the first window, y = the last window), one step of
    SGD on their mean cross-entropy from the state the window started in (truncated BPTT, training's own
    strict `_loss_and_grads`), the gradient clipped to ADAPT_CLIP in global norm; a non-finite gradient is
    skipped. The weights (Wx.. are views of learner's flat vector) change in place, on both sides alike.

    learner: (flat (P,), grad (P,), its views gWx gWu gWh gbh gWy gby, scratch hs (L, W, 1, H), pre (W, 1, H),
    logits (W, V), dh_above (W, 1, H), dh_next (1, H), no_masks (0, 1, 1, 1), history (W+1,) int64,
    h_window (L, 1, H))."""
    flat, grad, gWx, gWu, gWh, gbh, gWy, gby, hs, pre, logits, dh_above, dh_next, no_masks, history, h_window = learner
    seen = counters[3]
    counters[3] = seen + 1
    if window == 0:
        return
    slot = seen % window
    if slot == 0 and seen > 0:
        history[window] = char
        x, y = history[:window].reshape((1, window)), history[1:].reshape((1, window))
        _loss_and_grads(x, y, Wx, Wu, Wh, bh, Wy, by, h_window, hs, pre, logits, dh_above, dh_next, no_masks,
                        no_masks, gWx, gWu, gWh, gbh, gWy, gby, act, 1.0 / window)  # fmt: skip
        norm = _global_norm(grad)
        if norm < np.inf:
            _clip(grad, ADAPT_CLIP, 0.0, norm)
            step = flat.dtype.type(lr)
            for i in range(flat.size):
                flat[i] -= step * grad[i]
    if slot == 0:
        h_window[:] = h
    history[slot] = char


# ---- the range coder ----


@njit(**STRICT_OPTIONS)
def _shift_low(rc, out):
    """Move the top byte of low out of the window: write the cached byte (+ carry) and the pending
    0xFF bytes unless a later carry could still change them."""
    low = rc[0]
    if low < _FF_BOUND or low >= _TOP:
        carry = low >> 56
        byte = rc[2]
        position = rc[4]
        while rc[3] > 0:
            if position >= 0:  # position -1: the stream's first byte, always 0, is not written
                out[position] = (byte + carry) & 0xFF
            position += 1
            byte = 0xFF
            rc[3] -= 1
        rc[4] = position
        rc[2] = (low >> 48) & 0xFF
    rc[3] += 1
    rc[0] = (low & _LOW48) << 8


@njit(**STRICT_OPTIONS)
def _encode(rc, out, cum, freq, total):
    """Narrow the interval to the symbol [cum, cum + freq) of `total`; renormalise."""
    r = rc[1] // total
    rc[0] += r * cum
    if cum + freq < total:
        rc[1] = r * freq
    else:  # the last symbol takes the remainder of the division
        rc[1] -= r * cum
    while rc[1] < _BOTTOM:
        rc[1] <<= 8
        _shift_low(rc, out)


@njit(**STRICT_OPTIONS)
def _flush(rc, out):
    """Finish the stream: pick the point of [low, low + range) with the most trailing zero bits (a
    multiple of 2^48: range >= 2^48 guarantees one) and write what precedes them."""
    rc[0] = ((rc[0] + _BOTTOM - 1) >> 48) << 48
    _shift_low(rc, out)
    _shift_low(rc, out)


@njit(**STRICT_OPTIONS)
def _start_decoder(data, rd):
    rd[0], rd[1], rd[2], rd[3] = 0, _TOP - 1, 0, 0
    for _ in range(CODER_BYTES):
        rd[0] = (rd[0] << 8) | _next_byte(data, rd)


@njit(**STRICT_OPTIONS)
def _next_byte(data, rd):
    position = rd[2]
    rd[2] = position + 1
    return np.int64(data[position]) if position < data.size else 0


@njit(**STRICT_OPTIONS)
def _decode_target(rd, total):
    """(the count in [0, total) the next symbol's interval contains, the unit r)."""
    r = rd[1] // total
    return min(rd[0] // r, total - 1), r


@njit(**STRICT_OPTIONS)
def _decode_update(rd, data, r, cum, freq, total):
    """The decoder's side of `_encode` for the symbol [cum, cum + freq). Any bytes decode to some symbols
    (damage shows in the file's checksum); a code outside the interval, which no encoder writes, is
    flagged and reset, so the arithmetic never leaves int64."""
    rd[0] -= r * cum
    if cum + freq < total:
        rd[1] = r * freq
    else:
        rd[1] -= r * cum
    if rd[0] < 0 or rd[0] >= rd[1]:
        rd[3] = 1
        rd[0] = 0
    while rd[1] < _BOTTOM:
        rd[1] <<= 8
        rd[0] = (rd[0] << 8) | _next_byte(data, rd)


# ---- characters outside the vocabulary ----


@njit(**STRICT_OPTIONS)
def _remember(code_point, oov, oov_counts, counters, seen):
    """Count one more occurrence of the out-of-vocabulary character (seen: its slot, or -1 if new)."""
    if seen >= 0:
        oov_counts[seen] += 1
    elif counters[2] < OOV_SLOTS:
        oov[counters[2]] = code_point
        oov_counts[counters[2]] = 1
        counters[2] += 1
    total = 0
    for i in range(counters[2]):
        total += oov_counts[i]
    if total > OOV_TOTAL_LIMIT:
        for i in range(counters[2]):
            oov_counts[i] = (oov_counts[i] + 1) // 2


@njit(**STRICT_OPTIONS)
def _encode_oov(code_point, oov, oov_counts, counters, rc, out):
    m = counters[2]
    cum, seen, total = 0, -1, 0
    for i in range(m):
        if oov[i] == code_point:
            seen, cum = i, total
        total += oov_counts[i]
    new_weight = max(m, 1)
    if seen >= 0:
        _encode(rc, out, cum, oov_counts[seen], total + new_weight)
    else:
        _encode(rc, out, total, new_weight, total + new_weight)
        _encode(rc, out, code_point, 1, CODE_POINTS)
    _remember(code_point, oov, oov_counts, counters, seen)


@njit(**STRICT_OPTIONS)
def _decode_oov(data, oov, oov_counts, counters, rd):
    m = counters[2]
    total = 0
    for i in range(m):
        total += oov_counts[i]
    new_weight = max(m, 1)
    target, r = _decode_target(rd, total + new_weight)
    cum, seen = 0, -1
    for i in range(m):
        if target < cum + oov_counts[i]:
            seen = i
            break
        cum += oov_counts[i]
    if seen >= 0:
        _decode_update(rd, data, r, cum, oov_counts[seen], total + new_weight)
        code_point = oov[seen]
    else:
        _decode_update(rd, data, r, total, new_weight, total + new_weight)
        code_point, r = _decode_target(rd, CODE_POINTS)
        _decode_update(rd, data, r, code_point, 1, CODE_POINTS)
    _remember(code_point, oov, oov_counts, counters, seen)
    return code_point


# ---- whole blocks of text ----


@njit(**STRICT_OPTIONS)
def _encode_block(codes, Wx, Wu, Wh, bh, Wy, by, h, act, counters, oov, oov_counts, rc, out, logits, freq, pre,
                  tmp, one_id, window, lr, learner):  # fmt: skip
    """Encode codes (N,) int64 — a vocabulary id, or -1 - code point for a character outside it — into
    out (uint8, from rc[4]; room for 9 bytes a character + rc[3] pending + 16), carrying every state
    between blocks: h (L, 1, H) the model's, counters (4,), oov (OOV_SLOTS,) and oov_counts (OOV_SLOTS,) int64, rc (5,).
    act the activation code (never ACT_TANH_EXACT: libm). Scratch: logits (1, V), freq (V+1,) int64,
    pre (1, 1, H), tmp (1, H), one_id (1, 1) int64. window (0: off), lr, learner: adaptive coding (`_learn`)."""
    L = h.shape[0]
    for t in range(codes.size):
        escape = _escape_frequency(counters)
        _frequencies(h[L - 1], Wy, by, logits, freq, escape)
        char = codes[t]
        if char >= 0:
            cum = 0
            for v in range(char):
                cum += freq[v]
            _encode(rc, out, cum, freq[char], TOTAL)
            _learn(char, Wx, Wu, Wh, bh, Wy, by, h, act, counters, window, lr, learner)
            _advance(char, Wx, Wu, Wh, bh, h, pre, tmp, one_id, act)
        else:
            _encode(rc, out, TOTAL - escape, escape, TOTAL)
            counters[1] += 1
            _encode_oov(-1 - char, oov, oov_counts, counters, rc, out)
        counters[0] += 1


@njit(**STRICT_OPTIONS)
def _decode_block(data, codes, Wx, Wu, Wh, bh, Wy, by, h, act, counters, oov, oov_counts, rd, logits, freq, pre,
                  tmp, one_id, window, lr, learner):  # fmt: skip
    """Decode codes (N,) (as `_encode_block` takes them) from data (uint8) at rd, carrying the same
    states. Returns how many were decoded: N, or fewer when the stream turned out corrupt (rd[3])."""
    L = h.shape[0]
    V = by.size
    for t in range(codes.size):
        escape = _escape_frequency(counters)
        _frequencies(h[L - 1], Wy, by, logits, freq, escape)
        target, r = _decode_target(rd, TOTAL)
        char, cum = 0, 0
        while char < V and target >= cum + freq[char]:
            cum += freq[char]
            char += 1
        _decode_update(rd, data, r, cum, freq[char], TOTAL)
        if char < V:
            codes[t] = char
            _learn(char, Wx, Wu, Wh, bh, Wy, by, h, act, counters, window, lr, learner)
            _advance(char, Wx, Wu, Wh, bh, h, pre, tmp, one_id, act)
        else:
            counters[1] += 1
            codes[t] = -1 - _decode_oov(data, oov, oov_counts, counters, rd)
        counters[0] += 1
        if rd[3]:
            return t
    return codes.size
