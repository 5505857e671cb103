/* r1 run viewer (r1/eval/viewer.py, docs/viewer.md): the completions table with its filters and pages,
   and two steps side by side. Completions are untrusted model output: every piece of text goes into the
   page through textContent, never innerHTML. The data (rows, steps, reward keys, per-step stats) is the
   JSON block #run-data that viewer.py wrote. */
"use strict";

const DATA = JSON.parse(document.getElementById("run-data").textContent);
const PAGE_SIZE = 50; // table rows per page
const COMPARE_SIZE = 20; // completions per side in the comparison
const $ = (id) => document.getElementById(id);
let page = 0;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

// null is a reward that failed or does not apply to this row
const fmt = (value) => (value === null || value === undefined ? "—" : String(+Number(value).toFixed(4)));
const num = (value) => el("td", fmt(value), "num");
const valueOf = (row, key) => (key in row.rewards ? row.rewards[key] : row[key]);

// the completion as spans whose classes (think, answer, tag, text) viewer.css colours
function completionNode(row) {
  const pre = el("pre", null, "completion");
  for (const [kind, text] of row.spans) pre.append(el("span", text, kind));
  return pre;
}

function options(select, values) {
  for (const value of values) select.append(el("option", value));
}

function matching() {
  const step = $("f-step").value;
  const key = $("f-key").value;
  const truncatedOnly = $("f-truncated").checked;
  const low = $("f-min").value === "" ? -Infinity : Number($("f-min").value);
  const high = $("f-max").value === "" ? Infinity : Number($("f-max").value);
  const ranged = low !== -Infinity || high !== Infinity;
  return DATA.rows.filter((row) => {
    if (step !== "" && String(row.step) !== step) return false;
    if (truncatedOnly && !row.truncated) return false;
    const value = valueOf(row, key);
    return !ranged || (value !== null && value !== undefined && value >= low && value <= high);
  });
}

function rowNode(row) {
  const tr = el("tr");
  const prompt = el("td");
  prompt.append(el("div", row.id), el("div", "gold: " + row.gold, "meta"));
  if (row.prompt) {
    const details = el("details");
    details.append(el("summary", "prompt"), el("pre", row.prompt, "completion"));
    prompt.append(details);
  }
  tr.append(num(row.step), prompt, num(row.length), el("td", row.truncated ? "yes" : "", "yes"));
  for (const key of DATA.reward_keys) tr.append(num(row.rewards[key]));
  const completion = el("td");
  completion.append(completionNode(row));
  tr.append(num(row.advantage), completion);
  return tr;
}

function render() {
  const rows = matching();
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  page = Math.min(page, pages - 1);
  const shown = rows.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  $("table").tBodies[0].replaceChildren(...shown.map(rowNode));
  $("count").textContent = `${rows.length} of ${DATA.rows.length} embedded completions match`;
  $("page").textContent = `page ${page + 1} of ${pages}`;
  $("prev").disabled = page === 0;
  $("next").disabled = page >= pages - 1;
  document.body.dataset.matching = rows.length;
}

function card(row) {
  const rewards = DATA.reward_keys.map((key) => `${key.replace(/^reward\//, "")} ${fmt(row.rewards[key])}`);
  const meta = [row.id, "gold " + row.gold, ...rewards, "advantage " + fmt(row.advantage), fmt(row.length) + " tokens"];
  const div = el("div", null, "card");
  div.append(el("div", meta.join(" · ") + (row.truncated ? " · truncated" : ""), "meta"), completionNode(row));
  return div;
}

function showSide(target, step) {
  const box = $(target);
  const table = el("table");
  for (const [name, value] of Object.entries(DATA.stats[step] || {})) {
    const tr = el("tr");
    tr.append(el("th", name), num(value));
    table.append(tr);
  }
  const rows = DATA.rows.filter((row) => String(row.step) === step);
  const note = `${Math.min(rows.length, COMPARE_SIZE)} of its ${rows.length} embedded completions below`;
  box.replaceChildren(el("h3", "step " + step), table, el("p", note, "meta"), ...rows.slice(0, COMPARE_SIZE).map(card));
}

function setUp() {
  for (const figure of document.querySelectorAll(".curves figure")) {
    figure.addEventListener("click", () => figure.classList.toggle("zoomed"));
  }
  if (DATA.rows.length === 0) {
    for (const id of ["filters", "count", "table", "compare"]) $(id).hidden = true;
    document.querySelector(".pager").hidden = true;
    document.body.dataset.matching = 0;
    return;
  }
  const steps = DATA.steps.map(String);
  options($("f-step"), steps);
  options($("f-key"), [...DATA.reward_keys, "advantage", "length"]);
  const head = ["step", "prompt", "length", "truncated", ...DATA.reward_keys, "advantage", "completion"];
  $("table").tHead.append(el("tr"));
  $("table").tHead.rows[0].append(...head.map((name) => el("th", name)));
  $("filters").addEventListener("input", () => ((page = 0), render()));
  $("f-reset").addEventListener("click", () => ($("filters").reset(), (page = 0), render()));
  $("prev").addEventListener("click", () => ((page -= 1), render()));
  $("next").addEventListener("click", () => ((page += 1), render()));
  for (const [id, initial] of [["c-left", steps[0]], ["c-right", steps[steps.length - 1]]]) {
    options($(id), steps);
    $(id).value = initial;
    $(id).addEventListener("input", () => showSide(id.replace("c-", "side-"), $(id).value));
    showSide(id.replace("c-", "side-"), initial);
  }
  render();
}

// Selftest hook (docs/viewer.md), active only when the URL ends in #selftest: tick "truncated only" once
// and record on <body> the rendered and matching row counts before and after, so that a headless browser's
// --dump-dom shows whether the table rendered and the filter works (tests/test_viewer.py reads them).
function selftest() {
  const body = document.body.dataset;
  body.selftestRowsBefore = $("table").tBodies[0].rows.length;
  body.selftestMatchingBefore = body.matching;
  $("f-truncated").click();
  body.selftestRowsAfter = $("table").tBodies[0].rows.length;
  body.selftestMatchingAfter = body.matching;
  body.selftest = "done";
}

setUp();
if (location.hash === "#selftest") selftest();
