// The GGT-100K leaderboard page: renders data.json (written by `ggt leaderboard build`).
// Every string from a record is escaped (esc) before it becomes HTML, and a link's href must
// be http(s) or the site's own records/ file. Ranks come from data.json (eval/compare.py's
// rank_key): this file sorts by them and never ranks a mean itself, so a non-finite or
// unranked cell can only sort last.
"use strict";

const state = { category: "overall", search: "", tables: [] };
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function esc(value) {
  return String(value).replace(/[&<>"']/g, ch => ESCAPES[ch]);
}

function safeHref(url) {
  return typeof url === "string" && (/^https?:\/\//i.test(url) || /^records\/[^:]*$/.test(url)) ? url : null;
}

function linkHtml(url, text, name) {
  const href = safeHref(url);
  return href ? `<a href="${esc(href)}" rel="noopener noreferrer nofollow" target="_blank" data-link="${name}">`
    + `${esc(text)}</a>` : "";
}

function columns(t) {
  const cols = [
    { key: "model", label: "model", kind: "text", get: r => r.name.toLowerCase() + " " + r.model.toLowerCase() },
    { key: "status", label: "status", kind: "text", get: r => r.status },
    { key: "pairs", label: "pairs", kind: "number", get: r => r.pairs },
    { key: "selfcheck", label: "self-check", kind: "text", title: "ggt selfcheck on the install that scored it",
      get: r => r.selfcheck },
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

function scoreHtml(key, c) {
  // unranked: a NaN or mixed-infinity mean, a pending or mismatch record; † notes say which kinds
  const cls = "num" + (!c || c.rank === null ? " unranked" : "") + (c && c.best ? " best" : "");
  const title = (!c ? "no score" : c.rank === null ? "not ranked" : `rank ${c.rank}`) +
                (c && c.note ? ` · † ${c.note}` : "");
  const note = c && c.note ? `<small class="note"> (${esc(c.note)})</small>` : "";
  return `<td class="${cls}" data-col="${esc(key)}" data-rank="${c && c.rank !== null ? c.rank : ""}" ` +
         `title="${esc(title)}">${c ? esc(c.text) : "—"}${note}</td>`;
}

// The scoring install's calibration check (ggt selfcheck): a quiet mark, loud only when it failed.
const SELFCHECK = {
  passed: ["✓", "self-check passed: the install that scored this report matched pyiqa's calibration values"],
  failed: ["⚠ failed", "self-check failed on the install that scored this report, so its scores may be off"],
  incomplete: ["incomplete", "self-check incomplete: some metrics were not checked on the scoring install"],
  "not run": ["not run", "self-check not run on the install that scored this report"],
};
const SELFCHECK_UNKNOWN = ["unknown", "self-check unknown: a report made before ggt selfcheck was recorded"];

function selfcheckHtml(r) {
  const [text, title] = SELFCHECK[r.selfcheck] || SELFCHECK_UNKNOWN;
  const why = r.selfcheck === "failed" && r.selfcheck_failed ? `: ${r.selfcheck_failed}` : "";
  return `<td class="selfcheck" data-col="selfcheck"><span data-selfcheck="${esc(r.selfcheck || "unknown")}" ` +
         `title="${esc(title + why)}">${esc(text)}</span></td>`;
}

function matches(row) {
  const q = state.search.trim().toLowerCase();
  return !q || row.model.toLowerCase().includes(q) || row.name.toLowerCase().includes(q);
}

function rowHtml(cols, r) {
  const cells = cols.map(col => {
    switch (col.key) {
      case "model":
        return `<td class="model" data-col="model">${linkHtml(r.links.model, r.name, "model") ||
          esc(r.name)}<span class="id">${esc(r.model + (r.revision ? "@" + r.revision.slice(0, 12) : ""))}</span></td>`;
      case "status":
        return `<td class="status" data-col="status"><span class="badge" data-status="${esc(r.status)}">` +
               `${esc(r.status)}</span></td>`;
      case "pairs":
        return `<td class="num" data-col="pairs">${r.pairs === null || r.pairs === undefined ? "—" : esc(r.pairs)}</td>`;
      case "selfcheck":
        return selfcheckHtml(r);
      case "links":
        return `<td class="links" data-col="links">${linkHtml(r.links.paper, "paper", "paper")}` +
               `${linkHtml(r.links.report, "report", "report")}</td>`;
      default:
        return scoreHtml(col.key, cellOf(r, col.key));
    }
  });
  return `<tr data-model="${esc(r.model)}" data-status="${esc(r.status)}"${matches(r) ? "" : " hidden"}>` +
         cells.join("") + "</tr>";
}

function compare(col, dir) {
  return (a, b) => {
    const x = col.get(a.row), y = col.get(b.row);
    if (col.kind === "rank") {
      const rx = x && x.rank !== null ? x.rank : null, ry = y && y.rank !== null ? y.rank : null;
      if (rx === null || ry === null) return (rx === null) - (ry === null) || a.i - b.i;   // unranked last
      return dir * (rx - ry) || a.i - b.i;
    }
    if (x === null || x === undefined || y === null || y === undefined) return (x == null) - (y == null) || a.i - b.i;
    return dir * (x < y ? -1 : x > y ? 1 : 0) || a.i - b.i;
  };
}

function sortItems(t, key, keepDir) {
  const col = t.cols.find(c => c.key === key);
  if (!col || col.kind === "none") return false;
  if (!keepDir) t.dir = t.sortKey === key ? -t.dir : 1;     // first click: best (rank 1) or A first
  t.sortKey = key;
  t.items.sort(compare(col, t.dir));
  for (const th of t.thead.children)
    th.setAttribute("aria-sort", th.dataset.col === key ? (t.dir > 0 ? "ascending" : "descending") : "none");
  return true;
}

function sortTable(t, key) {            // a click: reorder the rows there are, build none
  if (!sortItems(t, key, false)) return;
  const body = t.tbody;
  for (const it of t.items) body.appendChild(it.tr);
}

function renderBody(t) {                // the rows, in their current order, for the current category
  t.tbody.innerHTML = t.items.map(it => rowHtml(t.cols, it.row)).join("");
  t.items.forEach((it, i) => { it.tr = t.tbody.rows[i]; });
}

function renderTable(t) {
  const section = document.createElement("section");
  section.className = "protocol";
  section.dataset.protocol = t.key;
  const cols = columns(t);
  const head = cols.map(c => `<th scope="col" data-col="${esc(c.key)}" aria-sort="none" class="${
    c.kind === "rank" || c.kind === "number" ? "num" : "text"}"${c.title ? ` title="${esc(c.title)}"` : ""}${
    c.kind === "none" ? "" : ' tabindex="0"'}>${esc(c.label)}</th>`).join("");
  section.innerHTML = `<h2>${esc(t.name)} v${esc(t.version)}</h2>` +
    (t.description ? `<p class="description">${esc(t.description)}</p>` : "") +
    `<table data-protocol="${esc(t.key)}"><thead><tr>${head}</tr></thead><tbody></tbody></table>`;
  const view = { key: t.key, cols, sortKey: null, dir: 1, tbody: section.querySelector("tbody"),
                 thead: section.querySelector("thead tr"), items: t.rows.map((row, i) => ({ row, i, tr: null })) };
  const first = cols.find(c => c.kind === "rank");
  if (first) sortItems(view, first.key, false);
  renderBody(view);
  view.thead.addEventListener("click", e => {
    const th = e.target.closest("th");
    if (th) timed("sortMs", () => sortTable(view, th.dataset.col));
  });
  view.thead.addEventListener("keydown", e => {
    if (e.key === "Enter" && e.target.dataset.col) timed("sortMs", () => sortTable(view, e.target.dataset.col));
  });
  return [section, view];
}

function count() {
  const shown = state.tables.reduce((n, t) => n + t.items.filter(it => !it.tr.hidden).length, 0);
  const total = state.tables.reduce((n, t) => n + t.items.length, 0);
  document.getElementById("count").textContent = `${shown} of ${total} records`;
  document.body.dataset.filter = `${state.category}|${state.search}`;
}

function onCategory() {                 // other means, other ranks: re-sort, then rebuild the rows
  for (const t of state.tables) {
    if (t.sortKey) sortItems(t, t.sortKey, true);
    renderBody(t);
  }
  count();
}

function onSearch() {
  for (const t of state.tables)
    for (const it of t.items) {
      const hide = !matches(it.row);
      if (it.tr.hidden !== hide) it.tr.hidden = hide;
    }
  count();
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
    const frag = document.createDocumentFragment();
    for (const t of data.protocols) {
      const [section, view] = renderTable(t);
      state.tables.push(view);
      frag.append(section);
      for (const c of t.categories) cats.add(c);
    }
    main.append(frag);
    const select = document.getElementById("category");
    for (const c of cats) select.add(new Option(c, c));
    count();
  });
  if (data.invalid.length) {
    document.getElementById("invalid-list").innerHTML = data.invalid.map(x =>
      `<li data-path="${esc(x.path)}"><code>${esc(x.path)}</code>: ${esc(x.reason)}</li>`).join("");
    document.getElementById("invalid").hidden = false;
  }
  document.getElementById("footer").textContent =
    `Built ${data.generated} from ${data.source} (data.json format ${data.format_version}).`;
  document.body.dataset.loaded = "1";
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("category").addEventListener("change", e => {
    state.category = e.target.value; timed("filterMs", onCategory);
  });
  document.getElementById("search").addEventListener("input", e => {
    state.search = e.target.value; timed("filterMs", onSearch);
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
