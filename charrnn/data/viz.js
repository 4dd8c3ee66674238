// charrnn viz page: reads the payload (format in charrnn/viz.py), draws one <span> per character, and
// recolours them by surprisal or by one hidden unit; ranks units by correlation with a pattern.
// No libraries, no network. window.charrnnViz exposes timings and state for tests and the benchmark.
"use strict";
(function () {
  const started = performance.now();
  const P = JSON.parse(document.getElementById("payload").textContent);
  const N = P.characters, K = P.top, L = P.model.num_layers, H = P.model.hidden_size;
  const chars = Array.from(P.text); // code points, as Python counts them
  const $ = (id) => document.getElementById(id);
  const viz = (window.charrnnViz = { ready: false, error: null, scriptStartMs: started });

  // ---- decoding the payload ----
  function bytes(b64) {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  function typed(b64, Kind) { // little-endian array of Kind from base64
    const raw = bytes(b64);
    if (littleEndian || Kind.BYTES_PER_ELEMENT === 1) return new Kind(raw.buffer);
    const view = new DataView(raw.buffer), out = new Kind(raw.length / Kind.BYTES_PER_ELEMENT);
    for (let i = 0; i < out.length; i++) {
      out[i] = Kind === Float32Array ? view.getFloat32(4 * i, true)
        : Kind === Uint32Array ? view.getUint32(4 * i, true) : view.getUint16(2 * i, true);
    }
    return out;
  }
  const mbits = typed(P.surprisal_mbits, Uint16Array); // (N-1,): characters 1..N-1
  const topIds = typed(P.top_ids, P.id_dtype === "<u2" ? Uint16Array : Uint32Array); // (N-1, K)
  const topProbs = typed(P.top_probs, Uint16Array); // (N-1, K), p * 65535
  const steps = P.activations.steps;
  const scales = typed(P.activations.scales, Float32Array); // (L, H)
  let acts = null; // Int8Array (L, H, N), unit-major; filled once inflated
  viz.decodeMs = performance.now() - started;

  async function inflate(raw) {
    const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  // ---- colours ----
  const BUCKETS = 64;
  function ramp(stops, t) { // stops: [[t, r, g, b], ...] with t ascending
    let i = 1;
    while (i < stops.length - 1 && t > stops[i][0]) i++;
    const [t0, r0, g0, b0] = stops[i - 1], [t1, r1, g1, b1] = stops[i];
    const f = Math.min(1, Math.max(0, (t - t0) / (t1 - t0)));
    return `rgb(${Math.round(r0 + f * (r1 - r0))},${Math.round(g0 + f * (g1 - g0))},${Math.round(b0 + f * (b1 - b0))})`;
  }
  const SURPRISAL_MAX = 8; // bits: everything above is as red as it gets
  const surprisalStops = [[0, 255, 255, 255], [0.25, 255, 243, 176], [0.5, 253, 187, 99], [0.75, 247, 119, 75], [1, 226, 69, 58]];
  const unitStops = [[0, 67, 147, 195], [0.5, 255, 255, 255], [1, 214, 96, 77]]; // -1 .. 0 .. +1
  const surprisalPalette = Array.from({ length: BUCKETS + 1 }, (_, k) => ramp(surprisalStops, k / BUCKETS));
  const unitPalette = Array.from({ length: BUCKETS + 1 }, (_, k) => ramp(unitStops, k / BUCKETS));
  const gradient = (palette) => `linear-gradient(to right, ${palette.filter((_, k) => k % 8 === 0).join(", ")})`;

  // ---- the text ----
  const box = $("text");
  const spans = new Array(N);
  const lineStart = new Int32Array(N); // index of the first character of each character's line
  const lineNo = new Int32Array(N); // its line, from 1
  // Lines go into blocks of LINES_PER_BLOCK; `content-visibility: auto` lets the browser skip style and
  // layout of the blocks off screen (20,000 characters: ~0.25 s less on first render, measured headless).
  const LINES_PER_BLOCK = 40;
  (function draw() {
    const frag = document.createDocumentFragment();
    let start = 0, line = 1, block = null, blockLines = 0;
    const newBlock = () => { block = document.createElement("div"); block.className = "block"; frag.appendChild(block); blockLines = 0; };
    newBlock();
    for (let i = 0; i < N; i++) {
      const s = document.createElement("span");
      s.textContent = chars[i];
      s._i = i;
      spans[i] = s;
      lineStart[i] = start;
      lineNo[i] = line;
      block.appendChild(s);
      if (chars[i] === "\n") {
        s.className = "nl";
        start = i + 1;
        line++;
        if (++blockLines === LINES_PER_BLOCK && i < N - 1) {
          block.style.containIntrinsicBlockSize = `auto ${blockLines * 1.55}em`;
          newBlock();
        }
      }
    }
    block.style.containIntrinsicBlockSize = `auto ${Math.max(1, blockLines) * 1.55}em`;
    if (N) spans[0].classList.add("first");
    box.appendChild(frag);
  })();

  const bitsAt = (i) => mbits[i - 1] / 1000; // i >= 1
  const state = { mode: "surprisal", layer: 0, unit: 0, cursor: Math.min(1, N - 1), mask: null };
  viz.state = state;

  function unitValue(layer, unit, i) { // dequantised activation
    return acts[(layer * H + unit) * N + i] / steps * scales[layer * H + unit];
  }
  function paint() {
    const t = performance.now();
    if (state.mode === "unit" && acts) {
      const base = (state.layer * H + state.unit) * N;
      for (let i = 0; i < N; i++) {
        spans[i].style.backgroundColor = unitPalette[Math.round((acts[base + i] / steps + 1) / 2 * BUCKETS)];
      }
    } else {
      spans[0] && (spans[0].style.backgroundColor = "");
      for (let i = 1; i < N; i++) {
        spans[i].style.backgroundColor = surprisalPalette[Math.min(BUCKETS, Math.round(bitsAt(i) / SURPRISAL_MAX * BUCKETS))];
      }
    }
    viz.paintMs = performance.now() - t;
    legend();
  }
  function legend() {
    const unit = state.mode === "unit" && acts;
    const scale = unit ? scales[state.layer * H + state.unit] : 1;
    const fmt = (x) => (Math.abs(x - Math.round(x)) < 1e-9 ? String(Math.round(x)) : x.toFixed(2));
    $("legend-bar").style.background = gradient(unit ? unitPalette : surprisalPalette);
    $("legend-low").textContent = unit ? `\u2212${fmt(scale)}` : "0";
    $("legend-high").textContent = unit ? `+${fmt(scale)}` : `\u2265${SURPRISAL_MAX} bits`;
    $("legend-label").textContent = unit ? `layer ${state.layer + 1}, unit ${state.unit}` : "surprisal: \u2212log\u2082 p(character)";
  }

  // ---- tooltip: hover and keyboard focus ----
  const tip = $("tip");
  const show = (c) => (c === "\n" ? "\u21B5" : c === " " ? "\u2423" : c === "\t" ? "\u21E5" : c);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  function fmtProb(p) { return p >= 0.001 ? p.toFixed(3) : p > 0 ? p.toExponential(1) : "0"; }
  function describe(i) {
    tip.replaceChildren();
    const head = el("div", "head");
    head.append(el("span", "char", show(chars[i])));
    if (i === 0) {
      head.append(" first character: it only conditions the model (nothing to predict it from)");
      tip.append(head);
    } else {
      const bits = bitsAt(i);
      let p = Math.pow(2, -bits); // from millibits; the top-K probabilities are finer, so use them when they can
      for (let k = 0; k < K; k++) if (P.vocab[topIds[(i - 1) * K + k]] === chars[i]) p = topProbs[(i - 1) * K + k] / 65535;
      head.append(`  p = ${fmtProb(p)} \u00b7 ${bits.toFixed(2)} bits`);
      tip.append(head, el("div", "pos", `top ${K} guesses:`));
      const table = el("table");
      for (let k = 0; k < K; k++) {
        const id = topIds[(i - 1) * K + k], p = topProbs[(i - 1) * K + k] / 65535;
        const row = el("tr", P.vocab[id] === chars[i] ? "hit" : "");
        const bar = el("td", "bar"), fill = el("span");
        fill.style.width = `${Math.max(1, Math.round(p * 90))}px`;
        bar.append(fill);
        row.append(el("td", "c", show(P.vocab[id])), el("td", "p", fmtProb(p)), bar);
        table.append(row);
      }
      tip.append(table);
    }
    if (state.mode === "unit" && acts) {
      tip.append(el("div", "unit", `layer ${state.layer + 1}, unit ${state.unit}: ${unitValue(state.layer, state.unit, i).toFixed(3)}`));
    }
    tip.append(el("div", "pos", `character ${i.toLocaleString("en")} \u00b7 line ${lineNo[i]}, column ${i - lineStart[i] + 1}`));
  }
  let hovered = null;
  function place(span) {
    const r = span.getBoundingClientRect();
    tip.hidden = false;
    const w = tip.offsetWidth, h = tip.offsetHeight;
    let x = r.left + window.scrollX, y = r.bottom + window.scrollY + 4;
    if (r.left + w > document.documentElement.clientWidth) x = Math.max(0, document.documentElement.clientWidth - w - 4 + window.scrollX);
    if (r.bottom + h + 4 > window.innerHeight) y = r.top + window.scrollY - h - 4;
    tip.style.left = `${x}px`;
    tip.style.top = `${y}px`;
  }
  function showTip(i) {
    if (hovered) hovered.classList.remove("hover");
    hovered = spans[i];
    hovered.classList.add("hover");
    describe(i);
    place(spans[i]);
    viz.tipIndex = i;
  }
  function hideTip() {
    tip.hidden = true;
    if (hovered) hovered.classList.remove("hover");
    hovered = null;
    viz.tipIndex = null;
  }
  box.addEventListener("mouseover", (e) => { if (e.target._i !== undefined) showTip(e.target._i); });
  box.addEventListener("mouseleave", () => {
    if (document.activeElement && document.activeElement._i !== undefined) showTip(document.activeElement._i);
    else hideTip();
  });
  // keyboard: one tab stop (roving tabindex); arrows move, Home/End go to line ends, Escape hides the tip
  function moveTo(i) {
    i = Math.max(0, Math.min(N - 1, i));
    spans[state.cursor].removeAttribute("tabindex");
    state.cursor = i;
    spans[i].tabIndex = 0;
    spans[i].focus();
  }
  if (N) spans[state.cursor].tabIndex = 0;
  box.addEventListener("focusin", (e) => {
    if (e.target._i === undefined) return;
    e.target.setAttribute("aria-describedby", "tip");
    showTip(e.target._i);
  });
  box.addEventListener("focusout", (e) => { if (e.target._i !== undefined) { e.target.removeAttribute("aria-describedby"); hideTip(); } });
  box.addEventListener("keydown", (e) => {
    const i = state.cursor, col = i - lineStart[i];
    const lineEnd = (j) => { while (j < N - 1 && chars[j] !== "\n") j++; return j; };
    let next = null;
    if (e.key === "ArrowRight") next = i + 1;
    else if (e.key === "ArrowLeft") next = i - 1;
    else if (e.key === "Home") next = lineStart[i];
    else if (e.key === "End") next = lineEnd(i);
    else if (e.key === "ArrowDown") { const s = lineEnd(i) + 1; next = s < N ? Math.min(s + col, lineEnd(s)) : i; }
    else if (e.key === "ArrowUp") { const s = lineStart[i] - 1; next = s >= 0 ? Math.min(lineStart[s] + col, s) : i; }
    else if (e.key === "Escape") { hideTip(); return; }
    if (next !== null) { e.preventDefault(); moveTo(next); }
  });
  box.addEventListener("click", (e) => {
    if (e.target._i !== undefined && window.getSelection().isCollapsed) moveTo(e.target._i);
  });

  // ---- unit picker ----
  const modeSel = $("mode"), layerSel = $("layer"), unitIn = $("unit");
  for (let l = 0; l < L; l++) layerSel.append(new Option(`${l + 1} of ${L}`, String(l)));
  unitIn.max = String(H - 1);
  function setUnit(layer, unit) {
    state.layer = Math.max(0, Math.min(L - 1, layer));
    state.unit = Math.max(0, Math.min(H - 1, unit));
    state.mode = "unit";
    modeSel.value = "unit";
    layerSel.value = String(state.layer);
    unitIn.value = String(state.unit);
    markSelected();
    paint();
    if (hovered) showTip(hovered._i);
  }
  viz.setUnit = setUnit;
  function markSelected() {
    for (const item of $("ranking").children) {
      item.classList.toggle("selected", state.mode === "unit" && item._unit[0] === state.layer && item._unit[1] === state.unit);
    }
  }
  modeSel.addEventListener("change", () => {
    if (modeSel.value === "unit") setUnit(state.layer, state.unit);
    else { state.mode = "surprisal"; markSelected(); paint(); }
  });
  layerSel.addEventListener("change", () => setUnit(Number(layerSel.value), state.unit));
  unitIn.addEventListener("change", () => {
    const u = Number.parseInt(unitIn.value, 10);
    setUnit(state.layer, Number.isFinite(u) ? u : 0);
  });
  $("prev-unit").addEventListener("click", () => setUnit(state.layer, state.unit - 1));
  $("next-unit").addEventListener("click", () => setUnit(state.layer, state.unit + 1));

  // ---- pattern search: rank units by Pearson correlation with a 0/1 mask over the characters ----
  const status = $("pattern-status");
  function setStatus(text, error) { status.textContent = text; status.classList.toggle("error", !!error); }
  function utf16ToChar() { // UTF-16 offset -> code point index (differ only after characters beyond U+FFFF)
    if (chars.length === P.text.length) return null;
    const map = new Int32Array(P.text.length + 1);
    let u = 0;
    for (let i = 0; i < N; i++) { map[u] = i; if (chars[i].length === 2) map[u + 1] = i; u += chars[i].length; }
    map[u] = N;
    return map;
  }
  const toChar = utf16ToChar();
  function regexMask(source) {
    const re = new RegExp(source, "gmu"); // throws on a bad pattern; ^ and $ match at line breaks (as in Python)
    const mask = new Uint8Array(N);
    for (const m of P.text.matchAll(re)) {
      let a = m.index, b = m.index + m[0].length;
      if (toChar) { a = toChar[a]; b = toChar[b]; }
      mask.fill(1, a, b);
    }
    return mask;
  }
  function rankUnits(mask, top) {
    let matched = 0;
    for (let i = 0; i < N; i++) matched += mask[i];
    if (matched === 0 || matched === N) return { matched, units: null };
    const varM = matched - (matched * matched) / N;
    const units = [];
    for (let u = 0; u < L * H; u++) {
      let sx = 0, sxx = 0, sxm = 0;
      const base = u * N;
      for (let i = 0; i < N; i++) {
        const x = acts[base + i];
        sx += x; sxx += x * x;
        if (mask[i]) sxm += x;
      }
      const varX = sxx - (sx * sx) / N;
      const corr = varX > 0 ? (sxm - (sx * matched) / N) / Math.sqrt(varX * varM) : 0;
      units.push([Math.floor(u / H), u % H, corr]);
    }
    units.sort((a, b) => Math.abs(b[2]) - Math.abs(a[2]) || a[0] - b[0] || a[1] - b[1]);
    return { matched, units: units.slice(0, top) };
  }
  viz.rankUnits = rankUnits;
  viz.regexMask = regexMask;
  function showMask(mask) {
    if (state.mask) for (let i = 0; i < N; i++) if (state.mask[i]) spans[i].classList.remove("match");
    state.mask = mask;
    if (mask) for (let i = 0; i < N; i++) if (mask[i]) spans[i].classList.add("match");
  }
  function showRanking(units) { // units: [[layer (0-based), unit, correlation], ...]
    const list = $("ranking");
    list.replaceChildren();
    for (const [layer, unit, corr] of units) {
      const item = el("li");
      item._unit = [layer, unit];
      const pick = el("button", "", `L${layer + 1}\u00b7${unit}`);
      pick.type = "button";
      pick.title = `Colour the text by layer ${layer + 1}, unit ${unit}`;
      pick.addEventListener("click", () => setUnit(layer, unit));
      item.append(pick, ` ${corr >= 0 ? "+" : "\u2212"}${Math.abs(corr).toFixed(3)}`);
      list.append(item);
    }
    $("ranking-row").hidden = units.length === 0;
    markSelected();
    viz.ranking = units;
  }
  function rankWith(mask, what) {
    if (!acts) { setStatus("activations are still loading", true); return; }
    const t = performance.now();
    const { matched, units } = rankUnits(mask, 10);
    showMask(mask);
    if (!units) {
      setStatus(`${what} covers ${matched ? "every" : "no"} character: a correlation needs both`, true);
      showRanking([]);
      return;
    }
    viz.rankMs = performance.now() - t;
    setStatus(`${what}: ${matched.toLocaleString("en")} of ${N.toLocaleString("en")} characters`);
    showRanking(units);
  }
  function rankPattern() {
    const source = $("pattern").value;
    if (!source) { setStatus("type a pattern, pick an example, or select text and press Use selection", true); return; }
    let mask;
    try { mask = regexMask(source); } catch (err) { setStatus(`not a valid pattern: ${err.message}`, true); return; }
    rankWith(mask, "the pattern");
  }
  $("rank").addEventListener("click", rankPattern);
  $("pattern").addEventListener("keydown", (e) => { if (e.key === "Enter") rankPattern(); });
  $("preset").addEventListener("change", (e) => { if (e.target.value) { $("pattern").value = e.target.value; rankPattern(); } });
  function selectionRange() { // [start, end) in characters, or null
    const sel = window.getSelection();
    if (!sel.rangeCount || sel.isCollapsed) return null;
    const r = sel.getRangeAt(0);
    const first = (node) => { // the first character span at or inside node
      while (node && node._i === undefined) node = node.nodeType === 1 && node.firstChild ? node.firstChild : null;
      return node ? node._i : null;
    };
    const index = (node, offset, isEnd) => { // a range boundary -> a character index
      if (node.nodeType === 3) {
        const i = node.parentNode._i;
        return i === undefined ? null : i + ((isEnd ? offset > 0 : offset >= node.length) ? 1 : 0);
      }
      if (node._i !== undefined) return node._i + (offset > 0 ? 1 : 0);
      if (offset < node.childNodes.length) return first(node.childNodes[offset]);
      let last = node; // past the end of a block: the character after its last one
      while (last && last._i === undefined) last = last.lastChild;
      return last ? last._i + 1 : null;
    };
    const a = index(r.startContainer, r.startOffset, false), b = index(r.endContainer, r.endOffset, true);
    return a === null || b === null || b <= a ? null : [a, b];
  }
  $("use-selection").addEventListener("mousedown", (e) => e.preventDefault()); // keep the selection
  $("use-selection").addEventListener("click", () => {
    const range = selectionRange();
    if (!range) { setStatus("select some of the text first", true); return; }
    const mask = new Uint8Array(N);
    mask.fill(1, range[0], range[1]);
    $("pattern").value = "";
    rankWith(mask, `the selection (characters ${range[0]}\u2013${range[1] - 1})`);
  });

  // ---- header, note, footer ----
  const m = P.model;
  const n = (x) => x.toLocaleString("en");
  $("meta").textContent = `${P.source} under ${m.name} (${m.num_layers} \u00d7 ${m.hidden_size} ${m.activation}, ${m.dtype}, ` +
    `${m.vocab_size} characters) \u00b7 ${n(N)} characters \u00b7 ${P.bits_per_char.toFixed(3)} bits/char`;
  const notes = [];
  if (P.limited_by === "max_chars") notes.push(`Showing the first ${n(N)} of ${n(P.source_characters)} characters (--max-chars ${n(P.max_chars)}).`);
  if (P.limited_by === "max_bytes") notes.push(`Showing the first ${n(N)} of ${n(P.source_characters)} characters: ` +
    `the page is kept under ${(P.max_bytes / 1e6).toFixed(1)} MB of data (--max-mb), and this model stores ${n(L * H)} activations a character.`);
  if (P.unknown.total) notes.push(`${n(P.unknown.total)} character(s) unknown to the model were ${P.unknown.policy === "skip" ? "skipped" : "mapped to " + JSON.stringify(P.unknown.policy)}.`);
  if (notes.length) { $("note").textContent = notes.join(" "); $("note").hidden = false; }
  $("footer").textContent = `Surprisal of character i is \u2212log\u2082 p(i | characters before it), from a zero state; ` +
    `the first character only conditions. Unit colours: the hidden state after reading each character, ` +
    `quantised to ${steps} steps each side of 0. Pattern ranking: Pearson correlation of each of the ${n(L * H)} units ` +
    `with a 0/1 mask over the ${n(N)} characters. Made by charrnn viz.`;

  paint();
  viz.drawMs = performance.now() - started;
  const controls = [modeSel, layerSel, unitIn, $("prev-unit"), $("next-unit"), $("rank"), $("use-selection"), $("preset")];
  controls.forEach((c) => (c.disabled = true));
  (typeof DecompressionStream === "function" ? inflate(bytes(P.activations.data)) : Promise.reject(new Error("this browser has no DecompressionStream")))
    .then((raw) => {
      viz.inflatedMs = performance.now();
      acts = new Int8Array(raw.buffer, raw.byteOffset, raw.length);
      if (acts.length !== L * H * N) throw new Error(`activations hold ${acts.length} values, expected ${L * H * N}`);
      controls.forEach((c) => (c.disabled = false));
      if (P.pattern) {
        $("pattern").value = P.pattern.regex;
        let mask = null;
        try { mask = regexMask(P.pattern.regex); } catch (err) { mask = null; }
        showMask(mask);
        showRanking(P.pattern.ranking.map((u) => [u.layer - 1, u.unit, u.correlation]));
        setStatus(`the pattern: ${n(P.pattern.matched)} of ${n(N)} characters (ranked by charrnn viz --pattern)`);
        if (P.pattern.ranking.length) setUnit(P.pattern.ranking[0].layer - 1, P.pattern.ranking[0].unit);
      }
    })
    .catch((err) => {
      viz.error = String(err && err.message || err);
      const note = $("note");
      note.textContent = (note.hidden ? "" : note.textContent + " ") + `Hidden units are unavailable: ${viz.error}.`;
      note.hidden = false;
    })
    .finally(() => {
      // ready once the first frame with everything in it has been painted
      requestAnimationFrame(() => setTimeout(() => {
        viz.readyMs = performance.now();
        viz.ready = true;
        document.documentElement.dataset.ready = "1";
      }, 0));
    });
})();
