// hivethink lab view: draws the data that hivethink.report.viewer computed. Every string from the
// run (model text, answers, labels) goes into the page as a text node, never as HTML.
"use strict";
(() => {
  const DATA = JSON.parse(document.getElementById("hivethink-data").textContent);
  const app = document.getElementById("app");
  const samples = DATA.samples;
  const byKey = new Map(samples.map((s) => [s.key, s]));
  const fetched = new Map(); // traces the server sent (served page)
  const filters = { substrate: "", task: "", workers: "", score: "" };

  // el("div", {class: "x"}, "text", child, ...): strings become text nodes
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "onclick" || k === "onchange") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c !== null && c !== undefined && c !== false) node.append(c);
    }
    return node;
  }
  const fmt = (v) => (v === null || v === undefined ? "–" : typeof v === "number" ? String(+v.toFixed(3)) : String(v));
  const colour = (names) => (name) => "w" + (Math.max(names.indexOf(name), 0) % 8);

  const SCORES = {
    "": ["any score", () => true],
    solved: ["solved (1)", (s) => !s.error && s.score === 1],
    partly: ["partly (between 0 and 1)", (s) => !s.error && s.score !== null && s.score > 0 && s.score < 1],
    unsolved: ["unsolved (0)", (s) => !s.error && s.score === 0],
    failed: ["failed (error)", (s) => !!s.error],
  };

  function select(id, label, options, key) {
    const sel = el("select", { id, onchange: (e) => { filters[key] = e.target.value; drawTable(); } },
      options.map(([value, text]) => el("option", { value }, text)));
    return el("label", {}, label, sel);
  }
  function distinct(field) {
    const values = [...new Set(samples.map((s) => s[field]))];
    return values.sort((a, b) => (typeof a === "number" ? a - b : String(a).localeCompare(String(b))));
  }
  const matches = (s) =>
    (!filters.substrate || s.substrate === filters.substrate) &&
    (!filters.task || s.task === filters.task) &&
    (!filters.workers || String(s.workers) === filters.workers) &&
    SCORES[filters.score][1](s);

  function pathologyBadges(p) {
    return Object.entries(p).map(([name, n]) => el("span", { class: "badge patho" }, `${name} ${n}`));
  }

  const tbody = el("tbody");
  const count = el("span", { class: "count", id: "count" });
  function drawTable() {
    const shown = samples.filter(matches);
    const current = currentKey();
    tbody.replaceChildren(...shown.map((s) => el("tr", {
      "data-key": s.key,
      class: [s.error ? "failed" : s.score === 1 ? "solved" : "", s.key === current ? "current" : ""].join(" ").trim(),
      onclick: () => { location.hash = "sample=" + s.key; },
    },
      el("td", { class: "num" }, fmt(s.index)), el("td", {}, s.substrate), el("td", {}, s.task),
      el("td", { class: "num" }, fmt(s.workers)), el("td", { class: "num" }, fmt(s.seed)),
      el("td", { class: "num score" }, s.error ? "error" : fmt(s.score)),
      el("td", { class: "answer", title: s.answer ?? "" }, s.answer ?? "–"),
      el("td", {}, pathologyBadges(s.pathologies)),
      el("td", { class: "num" }, fmt(s.facts.sequential_passes)), el("td", { class: "num" }, fmt(s.facts.tokens)))));
    count.textContent = `${shown.length} of ${samples.length} samples`;
  }

  const traceBox = el("section", { id: "trace" });
  const currentKey = () => (location.hash.startsWith("#sample=") ? decodeURIComponent(location.hash.slice(8)) : null);

  function outcome(s, trace) {
    const facts = Object.entries(s.facts).map(([k, v]) => `${k.replaceAll("_", " ")} ${fmt(v)}`).join(" · ");
    const verdict = s.error ? el("span", { class: "badge bad" }, "failed")
      : s.score === 1 ? el("span", { class: "badge ok" }, "solved")
      : el("span", { class: "badge bad" }, "not solved");
    const patho = Object.keys(s.pathologies).length ? pathologyBadges(s.pathologies) : el("span", { class: "meta" }, "none detected");
    return el("div", { class: "outcome" },
      el("div", {}, verdict, " score ", el("b", {}, fmt(s.score)), " · team answer ",
        el("b", { id: "team-answer" }, s.answer ?? "(none)"), s.finished_by ? ` · finished by ${s.finished_by}` : ""),
      el("div", {}, "pathologies: ", patho),
      facts ? el("div", { class: "meta" }, facts) : null,
      s.error ? el("pre", { class: "error" }, s.error) : null,
      trace && trace.team !== null && trace.team !== undefined && trace.team !== s.answer
        ? el("div", { class: "meta" }, "team answer event: ", trace.team) : null);
  }

  function passesView(t) {
    const c = colour(t.workers);
    const grid = el("div", { class: "passes" });
    grid.style.gridTemplateColumns = `5.5em repeat(${t.workers.length}, minmax(0, 1fr))`;
    grid.append(el("div", { class: "head gutter" }, "passes"), ...t.workers.map((w) => el("div", { class: "head " + c(w) }, w)));
    for (const row of t.rows) {
      grid.append(el("div", { class: "gutter prow", title: "forward passes" }, row.from === row.to ? fmt(row.from) : `${row.from}–${row.to}`));
      for (const w of t.workers) {
        const marks = row.marks.filter((m) => m.worker === w).map((m) =>
          m.kind === "check" ? el("span", { class: "mark check" }, `redundant? ${m.answer}`)
          : m.kind === "answer" ? el("span", { class: "mark answer" }, `answer: ${m.text}`)
          : el("span", { class: "mark" }, "step done"));
        grid.append(el("div", { class: c(w) },
          el("pre", {}, row.cells[w].map(([text, forced]) => (forced ? el("span", { class: "forced" }, text) : text))), marks));
      }
    }
    const answers = t.answers.length ? el("div", {}, el("h3", {}, "Answers"), t.answers.map((a) =>
      el("div", {}, el("span", { class: c(a.worker) }, a.worker), a.finisher ? " (asked by the finisher): " : ": ", el("b", {}, a.text || "(none)")))) : null;
    return [el("p", { class: "meta" }, "Workers side by side; a row is a stretch of forward passes (it ends where a worker ends a line). ",
      el("span", { class: "forced" }, "grey italic"), " text was forced (headers, checks), the rest sampled."), grid, answers];
  }

  function eventView(e, c) {
    const route = [];
    if (e.to) route.push("→ " + e.to.join(", "));
    if (e.kind === "prompt" && e.seen) route.push("held texts of: " + (e.seen.length ? e.seen.join(", ") : "nobody"));
    if (e.seen_by) route.push("seen by: " + (e.seen_by.length ? e.seen_by.join(", ") : "nobody"));
    const details = e.details.join(" · ");
    const head = [el("span", { class: "who " + c(e.worker) }, e.worker), el("span", { class: "kind" }, e.kind),
      route.length ? el("span", { class: "route" }, route.join(" · ")) : null,
      details ? el("span", { class: "route" }, details) : null];
    if (e.kind === "prompt") {
      return el("details", { class: "event prompt" }, el("summary", {}, head, el("span", { class: "meta" }, ` (what ${e.worker} was shown, ${e.text.length} characters)`)), el("pre", {}, e.text));
    }
    return el("div", { class: "event " + e.kind }, head, e.text ? el("pre", {}, e.text) : null);
  }

  function roundsView(t) {
    const names = [];
    for (const r of t.rounds) for (const e of r.events) if (!names.includes(e.worker)) names.push(e.worker);
    const c = colour(names);
    return t.rounds.map((r) => el("div", { class: "round" },
      el("h3", {}, r.round === null ? "Answers" : `Round ${r.round}`), r.events.map((e) => eventView(e, c))));
  }

  function drawTrace(s, t) {
    const title = el("h2", {}, `#${fmt(s.index)} ${s.substrate} / ${s.task} / N=${fmt(s.workers)} / seed ${fmt(s.seed)}`);
    const meta = el("div", { class: "meta" }, `model ${s.model} · instance ${s.instance} · key ${s.key}`);
    const parts = [title, meta, outcome(s, t)];
    if (!t) parts.push(el("p", { class: "note" }, "loading the trace…"));
    else if (t.layout === "missing") parts.push(el("p", { class: "note" }, t.note));
    else {
      if (t.prompt !== null) parts.push(el("details", {}, el("summary", {}, "Prompt (shared by every worker)"), el("pre", {}, t.prompt)));
      parts.push(...(t.layout === "passes" ? passesView(t) : roundsView(t)));
    }
    traceBox.replaceChildren(...parts.flat().filter(Boolean));
  }

  function showCurrent() {
    const key = currentKey();
    const s = key && byKey.get(key);
    drawTable();
    if (!s) { traceBox.replaceChildren(el("p", { class: "note" }, "Click a sample to read its trace.")); return; }
    if (DATA.traces && DATA.traces[key]) { drawTrace(s, DATA.traces[key]); return; }
    if (DATA.traces) {
      drawTrace(s, { layout: "missing", note: "This file holds the first samples' traces only; `hivethink lab view RUN` serves them all." });
      return;
    }
    if (fetched.has(key)) { drawTrace(s, fetched.get(key)); return; }
    drawTrace(s, null);
    fetch("api/trace/" + encodeURIComponent(key))
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((t) => { fetched.set(key, t); if (currentKey() === key) drawTrace(s, t); })
      .catch((err) => drawTrace(s, { layout: "missing", note: `trace not loaded: ${err.message}` }));
  }

  app.replaceChildren(
    el("h1", {}, "hivethink run: ", DATA.run),
    el("div", { class: "filters" },
      select("f-substrate", "substrate", [["", "all"], ...distinct("substrate").map((v) => [v, v])], "substrate"),
      select("f-task", "task", [["", "all"], ...distinct("task").map((v) => [v, v])], "task"),
      select("f-workers", "N", [["", "all"], ...distinct("workers").map((v) => [String(v), fmt(v)])], "workers"),
      select("f-score", "score", Object.entries(SCORES).map(([k, [text]]) => [k, text]), "score"),
      count),
    el("div", { class: "scroll" }, el("table", { id: "samples" },
      el("thead", {}, el("tr", {}, ["#", "substrate", "task", "N", "seed", "score", "answer", "pathologies", "passes", "tokens"].map((h) => el("th", {}, h)))),
      tbody)),
    traceBox);
  window.addEventListener("hashchange", showCurrent);
  showCurrent();
})();
