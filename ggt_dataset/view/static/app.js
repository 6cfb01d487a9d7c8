// ggt view: one page, no framework. Every view lives in the URL (filters, sort, page, pair, mode),
// so the address bar is the share button. The server pages, filters and sorts; this file draws.
"use strict";

const $ = (id) => document.getElementById(id);
let INFO = null;            // /api/info: columns, roles, submissions, comparisons
let STATE = {};             // the URL's parameters
let LIST = null;            // the last /api/rows answer
let LIST_KEY = "";
let PAIR = null;            // the open pair (/api/pair)
let PAIR_QUERY = "";        // what PAIR answered: a change of mode or sides alone asks again for nothing
let SEQ = 0;                // the latest pair request: older answers are dropped
let OPENED_HERE = false;    // the pair was opened from this page's grid: Esc goes back in history
const ZOOM = { scale: 1, x: 0, y: 0, fit: 1, w: 0, h: 0, key: "" };
// What the page calls each image: LQ, HQ, and each submission by its label ("output" when it is the only one).
const roleName = (role) => ({ lq: "LQ", hq: "HQ" })[role] || INFO.submissions.find((s) => s.role === role).name;
const submissionOf = (role) => INFO.submissions.find((s) => s.role === role);
const metricColumns = () => INFO.submissions.flatMap((s) => s.metrics);
// Two or more models' outputs: the detail opens side by side (LQ | A | B | HQ); one: the slider.
const defaultMode = () => (INFO.roles.length > 3 ? "side" : "slider");
const viewMode = () => (["side", "slider"].includes(STATE.mode) ? STATE.mode : defaultMode());

// ---- URL state ---------------------------------------------------------
// Label filters are lists, written as repeated parameters (license=a&license=b): labels may hold commas.
const labelColumns = () => INFO.columns.filter((c) => c.type === "label");
const isLabel = (k) => labelColumns().some((c) => c.name === k);
const queryKeys = () => [...labelColumns().map((c) => c.name), "where", "q", "sort"];
const empty = (v) => v === undefined || v === null || v === "" || (Array.isArray(v) && !v.length);

function readURL() {
  const s = {};
  const p = new URLSearchParams(location.search);
  for (const k of new Set(p.keys())) {
    const values = p.getAll(k).filter(Boolean);
    if (values.length) s[k] = isLabel(k) ? values : values[values.length - 1];
  }
  return s;
}

function params(keys, extra = {}) {
  const p = new URLSearchParams();
  for (const k of keys) for (const v of [].concat(STATE[k] ?? [])) if (v !== "") p.append(k, v);
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  return p;
}

function writeURL(push) {
  const p = params(Object.keys(STATE)).toString();
  if (p === location.search.replace(/^\?/, "")) return;
  history[push ? "pushState" : "replaceState"](null, "", p ? `?${p}` : location.pathname);
}

const query = (extra = {}) => params(queryKeys(), extra).toString();

function navigate(changes, push = true) {
  Object.assign(STATE, changes);
  for (const k of Object.keys(STATE)) if (empty(STATE[k])) delete STATE[k];
  writeURL(push);
  render();
}

async function api(path) {
  const r = await fetch(path);
  const body = await r.json();
  if (!r.ok) throw Object.assign(new Error(body.error || r.statusText), { param: body.param });
  return body;
}

function showError(e) {
  // A bad query parameter is said next to its own input; anything else at the bottom of the page.
  for (const el of document.querySelectorAll(".field-error")) el.hidden = true;
  for (const el of document.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const field = e && e.param && document.querySelector(`.field-error[data-for="${CSS.escape(e.param)}"]`);
  if (field) {
    field.hidden = false;
    field.textContent = e.message;
    const input = $(e.param);
    if (input) input.setAttribute("aria-invalid", "true");
  }
  $("error").hidden = !e || !!field;
  $("error").textContent = e && !field ? String(e.message || e) : "";
}

// v changes when the server's data does, so the browser never shows a cached image of a previous run.
const imageURL = (key, role, size) => `/api/image?${new URLSearchParams({ key, role, size, v: INFO.version })}`;
const comparison = (name) => INFO.comparisons.find((c) => c.name === name.replace(/^-/, ""));
// A comparison (A-vs-B) is a derived column: higher is A better.
const column = (name) => INFO.columns.find((c) => c.name === name) || (comparison(name) && { better: "higher" });
const arrow = (c) => (c && c.better ? (c.better === "higher" ? " ↑" : " ↓") : "");
const fmt = (v) => (v === null || v === undefined ? "–"
  : typeof v === "number" && !Number.isInteger(v) ? +v.toPrecision(5) : v);

// ---- controls ------------------------------------------------------------
function buildControls() {
  const box = $("labels");
  box.textContent = "";
  for (const c of labelColumns()) {
    const group = document.createElement("div");
    group.className = "group";
    group.dataset.column = c.name;
    group.appendChild(document.createElement("span")).textContent = c.name;
    for (const label of c.labels) {
      const chip = document.createElement("label");
      chip.className = "chip";
      chip.dataset.value = label;
      chip.textContent = label;
      chip.addEventListener("click", (e) => { e.preventDefault(); toggleLabel(c.name, label); });
      group.appendChild(chip);
    }
    const error = document.createElement("span");
    Object.assign(error, { className: "field-error", hidden: true });
    error.dataset.for = c.name;
    group.appendChild(error);
    box.appendChild(group);
  }
  const sort = $("sort");
  sort.innerHTML = `<option value="">dataset order</option>`;
  // First what several submissions are for: the pairs where one beats the other most, either way round.
  for (const c of INFO.comparisons) {
    sort.add(new Option(`${c.metric}: ${c.a} beats ${c.b} most`, `-${c.name}`));
    sort.add(new Option(`${c.metric}: ${c.b} beats ${c.a} most`, c.name));
  }
  for (const c of INFO.columns.filter((c) => c.type === "number")) {
    const options = c.better
      ? [[c.better === "higher" ? c.name : `-${c.name}`, `${c.name}: worst first`],
         [c.better === "higher" ? `-${c.name}` : c.name, `${c.name}: best first`]]
      : [[`-${c.name}`, `${c.name}: largest first`], [c.name, `${c.name}: smallest first`]];
    for (const [value, text] of options) sort.add(new Option(text, value));
  }
}

function toggleLabel(name, label) {
  const have = new Set(STATE[name] || []);
  have.has(label) ? have.delete(label) : have.add(label);
  navigate({ [name]: [...have], page: undefined, pair: undefined });
}

function syncControls() {
  for (const group of document.querySelectorAll("#labels .group")) {
    const on = new Set(STATE[group.dataset.column] || []);
    for (const chip of group.querySelectorAll(".chip")) chip.classList.toggle("on", on.has(chip.dataset.value));
  }
  $("where").value = STATE.where || "";
  $("q").value = STATE.q || "";
  $("sort").value = STATE.sort || "";
}

// ---- grid ------------------------------------------------------------------
async function loadList() {
  const key = query({ page: STATE.page || 1 });
  if (key === LIST_KEY && LIST) return;
  LIST = await api(`/api/rows?${key}`);
  LIST_KEY = key;
  drawGrid();
}

function card(row) {
  const div = document.createElement("div");
  div.className = "card";
  div.tabIndex = 0;
  div.dataset.key = row.key;
  const roles = INFO.roles.filter((r) => !submissionOf(r) || row.values[submissionOf(r).has] === "yes");
  const thumbs = document.createElement("div");
  thumbs.className = "thumbs";
  for (const role of roles) {
    const tile = document.createElement("div");
    tile.className = "thumb";
    const im = new Image();
    im.loading = "lazy";
    im.alt = `${roleName(role)} ${row.id}`;
    im.dataset.role = role;
    im.src = imageURL(row.key, role, "thumb");
    const name = document.createElement("span");
    name.className = "role";
    name.textContent = roleName(role);
    tile.append(im, name);
    thumbs.appendChild(tile);
  }
  const cap = document.createElement("div");
  cap.className = "cap";
  const sortName = (STATE.sort || "").replace(/^-/, "");
  const shown = [...new Set([sortName, ...metricColumns()].filter(Boolean))].slice(0, 2 + 2 * INFO.submissions.length);
  const v = row.values;
  for (const [cls, text] of [["id", row.id], ["", `${v.category} · ${v.split} · ${v.lq_width}×${v.lq_height}`]]) {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    cap.appendChild(span);
  }
  for (const name of shown) {
    const v = document.createElement("span");
    v.className = "v";
    v.dataset.metric = name;
    v.textContent = `${name}${arrow(column(name))} ${fmt(row.values[name])}`;
    cap.appendChild(v);
  }
  div.append(thumbs, cap);
  const open = () => { OPENED_HERE = true; navigate({ pair: row.key }); };
  div.addEventListener("click", open);
  div.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
  return div;
}

function drawGrid() {
  const grid = $("grid");
  grid.textContent = "";
  grid.style.setProperty("--tiles", INFO.roles.length);           // cards widen with the images they hold
  for (const row of LIST.rows) grid.appendChild(card(row));
  $("page-info").textContent = `page ${LIST.page} of ${LIST.pages}`;
  $("total").textContent = `${LIST.total.toLocaleString()} of ${INFO.rows.toLocaleString()} pairs`;
  $("prev-page").disabled = LIST.page <= 1;
  $("next-page").disabled = LIST.page >= LIST.pages;
  document.body.dataset.loaded = LIST_KEY;          // for tests: the grid shows this query
}

function turnPage(step) {
  if (!LIST) return;
  const page = Math.min(LIST.pages, Math.max(1, LIST.page + step));
  if (page !== LIST.page) navigate({ page: page === 1 ? undefined : String(page) });
}

// ---- detail ------------------------------------------------------------------
async function openPair(key) {
  const seq = ++SEQ;
  const q = query({ key });
  if (!PAIR || PAIR_QUERY !== q) {
    const pair = await api(`/api/pair?${q}`);
    if (seq !== SEQ) return;                       // a later step was asked for meanwhile
    [PAIR, PAIR_QUERY] = [pair, q];
    $("detail").hidden = false;
    $("pair-id").textContent = PAIR.key;
    $("position").textContent = PAIR.position === null ? "not in this filter" : `${PAIR.position + 1} of ${PAIR.total}`;
    $("prev-pair").disabled = !PAIR.prev;
    $("next-pair").disabled = !PAIR.next;
    drawMeta();
  }
  // The slider's sides: the first output against the second, else against HQ; else LQ against HQ.
  const roles = PAIR.roles;
  const outputs = roles.slice(1, -1);
  for (const [sel, fallback] of [["left", outputs[0] || "lq"], ["right", outputs[1] || "hq"]]) {
    $(sel).textContent = "";
    for (const r of roles) $(sel).add(new Option(roleName(r), r));
    $(sel).value = roles.includes(STATE[sel]) ? STATE[sel] : fallback;
  }
  await showImages(seq);
}

function closePair() {
  const was = PAIR && PAIR.key;
  PAIR = null;
  SEQ++;
  if ($("detail").hidden) return;
  $("detail").hidden = true;
  document.body.dataset.pair = "";
  // Focus goes back to the card the pair came from, so the keyboard carries on from there.
  const card = [...document.querySelectorAll(".card")].find((c) => c.dataset.key === was);
  if (card) card.focus();
}

function trapTab(e) {
  // While the pair is open, Tab cycles through its own controls, not the grid behind it.
  const items = [...$("detail").querySelectorAll("button, select, input")].filter((el) => !el.disabled && el.offsetParent);
  if (!items.length) return;
  const at = items.indexOf(document.activeElement);
  const next = e.shiftKey ? (at <= 0 ? items.length - 1 : at - 1) : (at + 1) % items.length;
  e.preventDefault();
  items[next].focus();
}

function leavePair() {
  // Back to the grid: the history entry before the pair is that grid when the pair was opened here.
  if (OPENED_HERE) { OPENED_HERE = false; history.back(); } else navigate({ pair: undefined });
}

function loaded(img, src) {
  return new Promise((resolve) => {
    img.onload = () => resolve(img);
    img.onerror = () => { img.title = "this image could not be loaded"; resolve(img); };
    img.src = src;
  });
}

async function showImages(seq) {
  const mode = viewMode();
  $("mode").value = mode;
  $("compare").hidden = mode !== "slider";
  $("side").hidden = mode !== "side";
  $("slider").hidden = mode !== "slider";
  $("pick").hidden = mode !== "slider";
  const id = PAIR.key;
  const waits = [];
  if (mode === "slider") {
    const [l, r] = [$("left").value, $("right").value];
    $("tag-left").textContent = roleName(l);
    $("tag-right").textContent = roleName(r);
    waits.push(loaded($("img-left"), imageURL(id, l, "full")), loaded($("img-right"), imageURL(id, r, "full")));
  } else {
    const side = $("side");
    side.textContent = "";
    for (const role of PAIR.roles) {
      const pane = document.createElement("div");
      pane.className = "pane";
      const frame = pane.appendChild(document.createElement("div"));
      frame.className = "frame";
      const img = frame.appendChild(new Image());
      img.alt = role;
      const tag = pane.appendChild(document.createElement("span"));
      tag.className = "tag";
      tag.textContent = roleName(role);          // a label is text, never markup
      side.appendChild(pane);
      waits.push(loaded(img, imageURL(id, role, "full")));
      attachZoom(pane);
    }
  }
  const images = await Promise.all(waits);
  if (seq !== SEQ) return;
  // Every image is drawn in the box of the HQ image (or the first that loaded), so one transform
  // lines them up; a differing aspect ratio is said in the meta table, not hidden.
  const ok = images.filter((im) => im.naturalWidth);
  const base = ok.find((im) => im.alt === "hq" || im.id === "img-right") || ok[0];
  const [w, h] = base ? [base.naturalWidth, base.naturalHeight] : [1, 1];
  if (ZOOM.key !== id || ZOOM.w !== w || ZOOM.h !== h) {
    Object.assign(ZOOM, { key: id, w, h });
    fit();                                          // a new pair: fit it; the same pair keeps its zoom
  } else {
    applyZoom();
  }
  setSlider($("slider").value);
  document.body.dataset.pair = id;                  // for tests: this pair (split:id) is drawn
}

function panes() {
  return [...document.querySelectorAll(viewMode() === "side" ? "#side .pane" : "#compare")];
}

function fit() {
  const pane = panes()[0];
  const s = Math.min(pane.clientWidth / ZOOM.w, pane.clientHeight / ZOOM.h);
  Object.assign(ZOOM, { fit: s, scale: s, x: (pane.clientWidth - ZOOM.w * s) / 2, y: (pane.clientHeight - ZOOM.h * s) / 2,
                        pw: pane.clientWidth, ph: pane.clientHeight });
  applyZoom();
}

function applyZoom() {
  // When the panes change size (slider <-> side by side, window resize), keep the image point
  // at their centre where it is, so a zoomed-in detail stays in view.
  const first = panes()[0];
  const [pw, ph] = [first.clientWidth, first.clientHeight];
  if (ZOOM.pw && (ZOOM.pw !== pw || ZOOM.ph !== ph)) {
    const [cx, cy] = [(ZOOM.pw / 2 - ZOOM.x) / ZOOM.scale, (ZOOM.ph / 2 - ZOOM.y) / ZOOM.scale];
    Object.assign(ZOOM, { x: pw / 2 - cx * ZOOM.scale, y: ph / 2 - cy * ZOOM.scale,
                          fit: Math.min(pw / ZOOM.w, ph / ZOOM.h) });
  }
  Object.assign(ZOOM, { pw, ph });
  for (const pane of panes()) {
    const frame = pane.querySelector(".frame");
    frame.style.width = `${ZOOM.w}px`;
    frame.style.height = `${ZOOM.h}px`;
    frame.style.transform = `translate(${ZOOM.x}px, ${ZOOM.y}px) scale(${ZOOM.scale})`;
    pane.classList.toggle("pixelated", ZOOM.scale >= 2);
  }
  // 2 screen pixels at any zoom (a width under 1 CSS pixel would be rounded up before scaling)
  $("divider").style.transform = `translateX(-50%) scaleX(${1 / ZOOM.scale})`;
  $("zoom-level").textContent = Math.abs(ZOOM.scale - ZOOM.fit) < 1e-9 ? "fit" : `${Math.round(ZOOM.scale * 100)}%`;
  document.body.dataset.zoom = ZOOM.scale.toFixed(4);
}

function zoomAt(factor, cx, cy) {
  const pane = panes()[0];
  if (cx === undefined) [cx, cy] = [pane.clientWidth / 2, pane.clientHeight / 2];
  const scale = Math.min(64, Math.max(ZOOM.fit / 2, ZOOM.scale * factor));
  ZOOM.x = cx - ((cx - ZOOM.x) * scale) / ZOOM.scale;
  ZOOM.y = cy - ((cy - ZOOM.y) * scale) / ZOOM.scale;
  ZOOM.scale = scale;
  applyZoom();
}

function nearDivider(pane, e) {
  if (pane.id !== "compare") return false;
  const r = $("divider").getBoundingClientRect();
  return Math.abs(e.clientX - (r.left + r.width / 2)) < 12;
}

function dragDivider(pane, e) {
  const frame = pane.querySelector(".frame").getBoundingClientRect();
  const move = (m) => setSlider(((m.clientX - frame.left) / frame.width) * 100);
  const up = () => { pane.removeEventListener("pointermove", move); pane.removeEventListener("pointerup", up); };
  pane.addEventListener("pointermove", move);
  pane.addEventListener("pointerup", up);
}

function attachZoom(pane) {
  pane.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = pane.getBoundingClientRect();
    zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  pane.addEventListener("pointerdown", (e) => {
    pane.setPointerCapture(e.pointerId);
    if (nearDivider(pane, e)) { dragDivider(pane, e); return; }   // the divider moves, the image stays
    pane.classList.add("dragging");
    let [px, py] = [e.clientX, e.clientY];
    const move = (m) => {
      ZOOM.x += m.clientX - px;
      ZOOM.y += m.clientY - py;
      [px, py] = [m.clientX, m.clientY];
      applyZoom();
    };
    const up = () => {
      pane.classList.remove("dragging");
      pane.removeEventListener("pointermove", move);
      pane.removeEventListener("pointerup", up);
    };
    pane.addEventListener("pointermove", move);
    pane.addEventListener("pointerup", up);
  });
}

function setSlider(value) {
  const v = Math.min(100, Math.max(0, Number(value)));
  $("slider").value = v;
  $("img-left").style.clipPath = `inset(0 ${100 - v}% 0 0)`;
  $("divider").style.left = `${v}%`;
  document.body.dataset.slider = String(v);
}

function drawMeta() {
  const rec = PAIR.record;
  // The scores first: they are why this pair is open (a worst-first list leads here).
  const rows = INFO.comparisons.map((c) => [`${c.metric}: ${c.a} over ${c.b} ↑`, fmt(PAIR.values[c.name])]);
  rows.push(...metricColumns().map((name) => [`${name}${arrow(column(name))}`, fmt(PAIR.values[name])]));
  if (PAIR.note) rows.push(["note", PAIR.note]);
  rows.push(["id", rec.id], ["category", rec.category], ["split", rec.split],
    ["LQ size", `${rec.lq_width}×${rec.lq_height}`], ["HQ size", `${rec.hq_width}×${rec.hq_height}`],
    ["source", rec.source], ["license", rec.license], ["generator", rec.generator], ["prompt", rec.prompt]);
  const sizes = Object.entries(PAIR.sizes).filter(([, size]) => size);
  const single = INFO.submissions.length === 1;
  const what = (role) => (single ? "prediction" : roleName(role));
  for (const [role, size] of sizes) rows.push([`${what(role)} size`, size.join("×")]);
  const aspect = (w, h) => w / h;
  const hq = aspect(rec.hq_width, rec.hq_height);
  for (const [what_, w, h] of [["LQ", rec.lq_width, rec.lq_height], ...sizes.map(([r, s]) => [what(r), ...s])]) {
    if (w && h && Math.abs(aspect(w, h) / hq - 1) > 0.01) {
      rows.push(["⚠ aspect", `${what_} ${w}×${h} is drawn stretched into HQ's ${rec.hq_width}×${rec.hq_height} box`]);
    }
  }
  for (const qc of rec.qc_scores || []) rows.push([`qc ${qc.name}`, fmt(qc.score)]);
  rows.push(["LQ sha256", rec.lq_sha256], ["HQ sha256", rec.hq_sha256]);
  const table = $("meta");
  table.textContent = "";
  for (const [k, v] of rows) {
    const tr = table.insertRow();
    const th = document.createElement("th");
    th.textContent = k;
    tr.appendChild(th);
    tr.insertCell().textContent = fmt(v);
  }
}

function setMode(m) {
  navigate({ mode: m === defaultMode() ? undefined : m }, false);    // the default stays out of the URL
}

// ---- wiring ------------------------------------------------------------------
async function render() {
  syncControls();
  try {
    await loadList();
    if (STATE.pair) await openPair(STATE.pair); else closePair();
    showError(null);
  } catch (e) {
    showError(e);
  }
}

function keys(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;          // the browser's own shortcuts
  if (PAIR && e.key === "Tab") { trapTab(e); return; }
  const el = document.activeElement;
  const typing = ["SELECT", "TEXTAREA"].includes(el.tagName) || (el.tagName === "INPUT" && el.type !== "range");
  if (typing && e.key !== "Escape") return;
  if (el.type === "range" && e.key.startsWith("Arrow")) return;     // the slider's own arrow keys
  if (PAIR) {
    const act = {
      ArrowLeft: () => PAIR.prev && navigate({ pair: PAIR.prev }, false),
      ArrowRight: () => PAIR.next && navigate({ pair: PAIR.next }, false),
      Escape: leavePair,
      s: () => setMode(viewMode() === "side" ? "slider" : "side"),
      "+": () => zoomAt(1.25), "=": () => zoomAt(1.25), "-": () => zoomAt(0.8), 0: fit,
      "[": () => setSlider(Number($("slider").value) - 5), "]": () => setSlider(Number($("slider").value) + 5),
    }[e.key];
    if (act) { e.preventDefault(); act(); }
    return;
  }
  if (e.key === "ArrowLeft") turnPage(-1);
  else if (e.key === "ArrowRight") turnPage(1);
  else if (e.key === "/") { e.preventDefault(); $("q").focus(); }
}

async function main() {
  try {
    INFO = await api("/api/info");
  } catch (e) {
    showError(e);
    return;
  }
  $("title").textContent = INFO.name;
  document.title = `${INFO.name} · ggt view`;
  $("subtitle").textContent = `${INFO.rows.toLocaleString()} pairs`
    + INFO.submissions.map((s) => ` · ${s.metrics.length ? "scored" : "outputs"}: ${s.label}`).join("");
  buildControls();
  $("controls").addEventListener("submit", (e) => {
    e.preventDefault();
    navigate({ where: $("where").value.trim(), q: $("q").value.trim(), sort: $("sort").value, page: undefined, pair: undefined });
  });
  $("sort").addEventListener("change", () => {
    $("sort").blur();
    navigate({ sort: $("sort").value, page: undefined, pair: undefined });
  });
  $("reset").addEventListener("click", () => { STATE = { ...INFO.start }; navigate({}); });
  $("prev-page").addEventListener("click", () => turnPage(-1));
  $("next-page").addEventListener("click", () => turnPage(1));
  $("prev-pair").addEventListener("click", () => PAIR && PAIR.prev && navigate({ pair: PAIR.prev }, false));
  $("next-pair").addEventListener("click", () => PAIR && PAIR.next && navigate({ pair: PAIR.next }, false));
  $("close").addEventListener("click", leavePair);
  // After a choice, focus leaves the select, so the arrow keys step pairs again.
  $("mode").addEventListener("change", () => {
    $("mode").blur();
    setMode($("mode").value);
  });
  for (const sel of ["left", "right"]) {
    $(sel).addEventListener("change", () => { $(sel).blur(); navigate({ [sel]: $(sel).value }, false); });
  }
  $("slider").addEventListener("input", () => setSlider($("slider").value));
  $("zoom-in").addEventListener("click", () => zoomAt(1.25));
  $("zoom-out").addEventListener("click", () => zoomAt(0.8));
  $("zoom-fit").addEventListener("click", fit);
  attachZoom($("compare"));
  document.addEventListener("keydown", keys);
  window.addEventListener("popstate", () => { OPENED_HERE = false; STATE = readURL(); render(); });
  window.addEventListener("resize", () => PAIR && fit());
  // A URL that names no view opens on the server's first one (with a report: its split, worst first),
  // written into the URL so that it is shared like any other.
  STATE = location.search ? readURL() : { ...INFO.start };
  writeURL(false);
  render();
}

main();
