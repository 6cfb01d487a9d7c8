// The GGT-100K leaderboard page: renders data.json (written by `ggt leaderboard build`).
// Every string from a record goes through textContent or a checked href, never innerHTML.
// Ranks come from data.json (eval/compare.py's rank_key): this file sorts by them and never
// ranks a mean itself, so a non-finite or unranked cell can only sort last.
"use strict";

const state = { category: "overall", search: "", tables: [] };

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function safeHref(url) {
  // a record is hostile: only http(s) and the site's own relative records/ links
  return typeof url === "string" && (/^https?:\/\//i.test(url) || /^records\/[^:]*$/.test(url)) ? url : null;
}

function link(url, text) {
  const href = safeHref(url);
  if (!href) return null;
  return el("a", { href, rel: "noopener noreferrer nofollow", target: "_blank", "data-link": text }, text);
}

function columns(t) {
  const cols = [
    { key: "model", label: "model", kind: "text", get: r => r.name.toLowerCase() + " " + r.model.toLowerCase() },
    { key: "status", label: "status", kind: "text", get: r => r.status },
    { key: "pairs", label: "pairs", kind: "number", get: r => r.pairs },
  ];
  for (const m of t.metrics.concat(t.derived))
    cols.push({ key: m.name, label: `${m.name} ${m.arrow}`, kind: "rank", title: m.formula ||
                `${m.better} is better`, get: r => cellOf(r, m.name) });
  cols.push({ key: "links", label: "links", kind: "none" });
  return cols;
}

function cellOf(row, name) {
  const scope = row.cells[state.category];
  return scope ? scope[name] : undefined;
}

function fillCell(td, c) {
  td.textContent = c ? c.text : "—";
  if (c && c.note) td.append(el("small", { class: "note" }, ` (${c.note})`));   // which kinds the † counts
  td.dataset.rank = c && c.rank !== null ? String(c.rank) : "";
  td.classList.toggle("unranked", !c || c.rank === null);
  td.classList.toggle("best", !!c && !!c.best);
  td.dataset.note = c && c.note ? c.note : "";
  td.title = (!c ? "no score" : c.rank === null ? "not ranked" : `rank ${c.rank}`) + (c && c.note ? ` · † ${c.note}` : "");
}

function renderRow(t, cols, r) {
  const tr = el("tr", { "data-model": r.model, "data-status": r.status });
  for (const col of cols) {
    const td = el("td", { class: col.key === "model" || col.key === "status" || col.key === "links" ? col.key : "num",
                          "data-col": col.key });
    if (col.key === "model") {
      const a = link(r.links.model, r.name) || el("span", {}, r.name);
      td.append(a, el("span", { class: "id" }, r.model + (r.revision ? "@" + r.revision.slice(0, 12) : "")));
    } else if (col.key === "status") {
      td.append(el("span", { class: "badge", "data-status": r.status }, r.status));
    } else if (col.key === "pairs") {
      td.textContent = r.pairs === null || r.pairs === undefined ? "—" : String(r.pairs);
    } else if (col.key === "links") {
      for (const [url, text] of [[r.links.paper, "paper"], [r.links.report, "report"]]) {
        const a = link(url, text);
        if (a) td.append(a);
      }
    } else fillCell(td, cellOf(r, col.key));
    tr.append(td);
  }
  return tr;
}

function compare(col, dir) {
  return (a, b) => {
    if (col.kind === "rank") {
      const x = col.get(a.row), y = col.get(b.row);
      const rx = x && x.rank !== null ? x.rank : null, ry = y && y.rank !== null ? y.rank : null;
      if (rx === null || ry === null) return (rx === null) - (ry === null);   // unranked last, both ways
      return dir * (rx - ry) || a.i - b.i;
    }
    const x = col.get(a.row), y = col.get(b.row);
    if (x === null || x === undefined || y === null || y === undefined) return (x == null) - (y == null);
    return dir * (x < y ? -1 : x > y ? 1 : 0) || a.i - b.i;
  };
}

function sortTable(t, key) {
  const col = t.cols.find(c => c.key === key);
  if (!col || col.kind === "none") return;
  t.dir = t.sortKey === key ? -t.dir : 1;        // first click: best (rank 1) or A first
  t.sortKey = key;
  t.items.sort(compare(col, t.dir));
  const body = t.tbody;
  for (const it of t.items) body.appendChild(it.tr);
  for (const th of t.thead.children)
    th.setAttribute("aria-sort", th.dataset.col === key ? (t.dir > 0 ? "ascending" : "descending") : "none");
}

function renderTable(t) {
  const section = el("section", { class: "protocol", "data-protocol": t.key });
  section.append(el("h2", {}, `${t.name} v${t.version}`));
  if (t.description) section.append(el("p", { class: "description" }, t.description));
  const cols = columns(t);
  const table = el("table", { "data-protocol": t.key });
  const thead = el("tr");
  for (const col of cols) {
    const th = el("th", { "data-col": col.key, scope: "col", "aria-sort": "none",
                          class: col.kind === "rank" || col.kind === "number" ? "num" : "text" }, col.label);
    if (col.title) th.title = col.title;
    if (col.kind !== "none") th.tabIndex = 0;
    thead.append(th);
  }
  const tbody = el("tbody");
  const items = t.rows.map((row, i) => ({ row, i, tr: renderRow(t, cols, row) }));
  for (const it of items) tbody.append(it.tr);
  table.append(el("thead"), tbody);
  table.tHead.append(thead);
  section.append(table);
  const view = { key: t.key, data: t, cols, items, tbody, thead, sortKey: null, dir: 1 };
  thead.addEventListener("click", e => {
    const th = e.target.closest("th");
    if (th) timed("sortMs", () => sortTable(view, th.dataset.col));
  });
  thead.addEventListener("keydown", e => {
    if (e.key === "Enter" && e.target.dataset.col) timed("sortMs", () => sortTable(view, e.target.dataset.col));
  });
  const first = cols.find(c => c.kind === "rank");
  if (first) sortTable(view, first.key);
  return [section, view];
}

function applyFilters() {
  let shown = 0, total = 0;
  const q = state.search.trim().toLowerCase();
  for (const t of state.tables) {
    for (const it of t.items) {
      for (const col of t.cols)
        if (col.kind === "rank") fillCell(it.tr.querySelector(`td[data-col="${CSS.escape(col.key)}"]`), cellOf(it.row, col.key));
      const hit = !q || it.row.model.toLowerCase().includes(q) || it.row.name.toLowerCase().includes(q);
      it.tr.hidden = !hit;
      shown += hit; total += 1;
    }
    if (t.sortKey) { t.dir = -t.dir; sortTable(t, t.sortKey); }   // re-sort by this category's ranks
  }
  document.getElementById("count").textContent = `${shown} of ${total} records`;
  document.body.dataset.filter = `${state.category}|${state.search}`;
}

function timed(name, fn) {
  const t0 = performance.now();
  fn();
  void document.body.offsetHeight;               // include the layout the change forces
  document.body.dataset[name] = (performance.now() - t0).toFixed(2);
}

function render(data) {
  const main = document.getElementById("tables");
  const cats = new Set();
  timed("renderMs", () => {
    for (const t of data.protocols) {
      const [section, view] = renderTable(t);
      state.tables.push(view);
      main.append(section);
      for (const c of t.categories) cats.add(c);
    }
    const select = document.getElementById("category");
    for (const c of cats) select.append(el("option", { value: c }, c));
    applyFilters();
  });
  if (data.invalid.length) {
    const list = document.getElementById("invalid-list");
    for (const x of data.invalid) {
      const li = el("li", { "data-path": x.path });
      li.append(el("code", {}, x.path), document.createTextNode(": " + x.reason));
      list.append(li);
    }
    document.getElementById("invalid").hidden = false;
  }
  document.getElementById("footer").textContent =
    `Built ${data.generated} from ${data.source} (data.json format ${data.format_version}).`;
  document.body.dataset.loaded = "1";
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("category").addEventListener("change", e => {
    state.category = e.target.value; timed("filterMs", applyFilters);
  });
  document.getElementById("search").addEventListener("input", e => {
    state.search = e.target.value; timed("filterMs", applyFilters);
  });
  fetch("data.json").then(r => {
    if (!r.ok) throw new Error(`data.json: HTTP ${r.status}`);
    return r.json();
  }).then(render).catch(err => {
    const p = document.getElementById("error");
    p.textContent = `Cannot show the leaderboard: ${err.message}`;
    p.hidden = false;
    document.body.dataset.loaded = "error";
  });
});
