// The live page: controls, requests to the local server, redraws. Every descent is
// computed by the server (descend.minimize); this file only asks and draws.
"use strict";

const F = window.ExploreFigures;
const S = {
  catalog: null, terrains: {}, terrain: null, entries: [], runs: [], start: null,
  steps: 300, noise: 0, seq: 0, inflight: {}, pending: {}, t0: null,
};
window.exploreState = { redraws: 0, lastRedrawMs: null, errors: 0, start: null, replays: 0 };
// Whether a run is in flight or waiting: the tests wait for this to settle.
Object.defineProperty(window.exploreState, "busy", {
  get: () => Object.values(S.inflight).some(Boolean) || Object.values(S.pending).some(Boolean),
});

const $ = (id) => document.getElementById(id);

function showError(text) {
  $("error").textContent = text;
  $("error").style.display = text ? "block" : "none";
  if (text) window.exploreState.errors += 1;
}

async function api(url, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const res = await fetch(url, init);
  const data = await res.json();
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

// A slider's position (0..1000) and its value, on a log scale where the range is declared so.
function toValue(s, pos) {
  const t = pos / 1000;
  return s.log ? s.low * Math.pow(s.high / s.low, t) : s.low + (s.high - s.low) * t;
}
function toPos(s, v) {
  const t = s.log ? Math.log(v / s.low) / Math.log(s.high / s.low) : (v - s.low) / (s.high - s.low);
  return Math.round(1000 * Math.min(1, Math.max(0, t)));
}
const fmt = (v) => (Math.abs(v) >= 1e-3 || v === 0 ? +v.toPrecision(3) : v.toExponential(2));

function spec(name) { return S.catalog.optimizers.find((o) => o.name === name); }

function defaultHp(name) {
  const hp = {};
  for (const s of spec(name).sliders) hp[s.name] = s.name === "lr" ? S.terrain.lrs[name] ?? s.default : s.default;
  return hp;
}

function sliderRow(s, value, onInput) {
  const row = document.createElement("div");
  row.className = "slider";
  const label = document.createElement("label");
  label.textContent = s.name;
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min: 0, max: 1000, step: 1 });
  input.value = toPos(s, value);
  input.dataset.param = s.name;
  const out = document.createElement("output");
  out.textContent = fmt(value);
  input.addEventListener("input", () => {
    const v = toValue(s, +input.value);
    out.textContent = fmt(v);
    onInput(v);
  });
  row.append(label, input, out);
  return row;
}

function renderEntries() {
  const box = $("opts");
  box.replaceChildren();
  S.entries.forEach((entry, i) => {
    const div = document.createElement("div");
    div.className = "opt";
    div.dataset.index = i;
    div.style.borderLeftColor = F.COLORS[i % F.COLORS.length];
    const select = document.createElement("select");
    for (const o of S.catalog.optimizers) {
      const opt = new Option(o.available ? o.name : `${o.name} (needs matrices)`, o.name);
      opt.disabled = !o.available;
      opt.title = o.available ? o.summary : o.reason;
      select.append(opt);
    }
    select.value = entry.name;
    select.addEventListener("change", () => {
      S.entries[i] = { name: select.value, hp: defaultHp(select.value) };
      renderEntries();
      runOne(i);
    });
    const remove = document.createElement("button");
    remove.textContent = "×";
    remove.title = "remove";
    remove.addEventListener("click", () => {
      S.entries.splice(i, 1);
      S.runs.splice(i, 1);
      renderEntries();
      draw();
    });
    div.append(select, remove);
    for (const s of spec(entry.name).sliders) {
      div.append(sliderRow(s, entry.hp[s.name], (v) => { entry.hp[s.name] = v; S.t0 = performance.now(); runOne(i); }));
    }
    box.append(div);
  });
  $("add").disabled = S.entries.length >= S.catalog.limits.max_runs;
}

function draw() {
  const t0 = S.t0;  // the slider move this draw answers, if any: timed once
  S.t0 = null;
  const drawing = performance.now();
  return F.drawRuns({ map: "map", gap: "gap", surface: "surface", verdicts: "verdicts" },
    S.terrain, S.runs, S.start).then(() => {
    window.exploreState.redraws += 1;
    window.exploreState.start = S.start;
    window.exploreState.lastDrawMs = performance.now() - drawing;
    if (t0 !== null) window.exploreState.lastRedrawMs = performance.now() - t0;
  });
}

function request(entries) {
  return {
    terrain: S.terrain.name, knobs: S.terrain.knobs, start: S.start, steps: S.steps, noise: S.noise,
    optimizers: entries,
  };
}

// One optimizer's run. While one is in flight for this entry, only the latest setting is
// kept and sent when it returns, so dragging a slider never queues stale work.
async function runOne(i) {
  if (S.inflight[i]) { S.pending[i] = true; return; }
  S.inflight[i] = true;
  const seq = S.seq;
  try {
    const asked = performance.now();
    const { runs } = await api("/api/run", request([S.entries[i]]));
    window.exploreState.lastFetchMs = performance.now() - asked;
    if (seq === S.seq && i < S.entries.length) { S.runs[i] = runs[0]; showError(""); await draw(); }
  } catch (err) {
    showError(err.message);
  } finally {
    S.inflight[i] = false;
    if (S.pending[i]) { S.pending[i] = false; runOne(i); }
  }
}

// Every run, one request each, drawn as each arrives (the walkers appear one by one).
async function runAll() {
  S.seq += 1;
  S.runs = S.entries.map(() => null);
  S.t0 = null;
  for (let i = 0; i < S.entries.length; i++) await runOne(i);
}

// Replays the walk: every path grows from its start, step by step, over about REPLAY_MS.
const REPLAY_MS = 2000;
function replay() {
  const runs = S.runs.slice();
  const longest = Math.max(1, ...runs.map((r) => (r ? r.path.length : 1)));
  const started = performance.now();
  const frame = () => {
    const n = Math.min(longest, 1 + Math.floor(((performance.now() - started) / REPLAY_MS) * longest));
    const partial = runs.map((r) => r && Object.assign({}, r, {
      path: r.path.slice(0, n), f: r.f.slice(0, n), gap: r.gap && r.gap.slice(0, n),
    }));
    F.drawRuns({ map: "map", gap: "gap", verdicts: "verdicts" }, S.terrain, partial, S.start).then(() => {
      if (n < longest) requestAnimationFrame(frame);
      else { window.exploreState.replays += 1; draw(); }
    });
  };
  requestAnimationFrame(frame);
}

// A terrain with its settings (the quadratic's condition number, the plateau's width).
async function setTerrain(name, keepEntries, knobs = {}) {
  const query = new URLSearchParams(knobs).toString();
  const key = `${name}?${query}`;
  if (!S.terrains[key]) S.terrains[key] = await api(`/api/terrain/${name}?${query}`);
  S.terrain = S.terrains[key];
  $("terrain").value = name;
  S.start = S.terrain.starts[0];
  if (!keepEntries) S.entries = S.entries.map((e) => ({ name: e.name, hp: defaultHp(e.name) }));
  renderKnobs();
}

function renderKnobs() {
  const box = $("knobs");
  box.replaceChildren();
  const entry = S.catalog.terrains.find((t) => t.name === S.terrain.name);
  for (const k of entry.knobs) {
    const value = S.terrain.knobs[k.name] ?? k.default;
    const row = sliderRow(k, value, () => {});
    row.querySelector("input").addEventListener("change", async (ev) => {
      const knobs = Object.assign({}, S.terrain.knobs, { [k.name]: +toValue(k, +ev.target.value).toPrecision(3) });
      try {
        await setTerrain(S.terrain.name, false, knobs);
        renderEntries();
        runAll();
      } catch (err) { showError(err.message); }
    });
    box.append(row);
  }
}

function setSteps(v) { S.steps = v; $("steps").value = v; $("steps-out").textContent = v; }
const NOISE = { name: "noise", low: 0, high: 1, log: false };
function setNoise(v) { S.noise = v; $("noise").value = toPos(NOISE, v); $("noise-out").textContent = fmt(v); }

async function loadLesson(key) {
  const lesson = await api(`/api/lesson/${key}`);
  $("lesson").style.display = "block";
  $("lesson").dataset.key = key;
  $("lesson-title").textContent = lesson.title;
  $("lesson-text").textContent = lesson.text;
  $("lesson-controls").replaceChildren();
  if (lesson.request) {
    const r = lesson.request;
    await setTerrain(r.terrain, true, r.knobs || {});
    if (r.start) S.start = r.start;
    setSteps(r.steps ?? S.steps);
    setNoise(r.noise ?? 0);
    S.entries = r.optimizers.map((o) => ({ name: o.name, hp: Object.assign(defaultHp(o.name), o.hp || {}) }));
    renderEntries();
    await runAll();
  }
  const fig = $("lesson-fig");
  fig.style.display = lesson.figure ? "block" : "none";
  if (lesson.figure) {
    await F.drawFigure("lesson-fig", lesson.figure);
    if (lesson.controls) lessonControls(key, lesson.controls);
  }
  $("lesson").dataset.ready = key;
}

function lessonControls(key, controls) {
  for (const c of controls) {
    const s = { name: c.name, low: 0, high: c.choices.length - 1, log: false };
    const row = sliderRow(s, c.choices.indexOf(c.value), () => {});
    const input = row.querySelector("input");
    const out = row.querySelector("output");
    out.textContent = c.value;
    input.addEventListener("input", async () => {
      const value = c.choices[Math.round((+input.value / 1000) * (c.choices.length - 1))];
      out.textContent = value;
      try {
        const lesson = await api(`/api/lesson/${key}?${c.name}=${value}`);
        await F.drawFigure("lesson-fig", lesson.figure);
      } catch (err) { showError(err.message); }
    });
    $("lesson-controls").append(row);
  }
}

async function init() {
  S.catalog = await api("/api/catalog");
  for (const t of S.catalog.terrains) $("terrain").append(new Option(t.name, t.name));
  $("steps").max = S.catalog.limits.max_steps;
  $("steps").addEventListener("change", () => { setSteps(+$("steps").value); runAll(); });
  $("steps").addEventListener("input", () => { $("steps-out").textContent = $("steps").value; });
  $("noise").addEventListener("input", () => { setNoise(toValue(NOISE, +$("noise").value)); });
  $("noise").addEventListener("change", () => runAll());
  $("terrain").addEventListener("change", async () => {
    try {
      await setTerrain($("terrain").value, false);
      renderEntries();
      runAll();
    } catch (err) { showError(err.message); }
  });
  $("replay").addEventListener("click", replay);
  $("add").addEventListener("click", () => {
    const used = new Set(S.entries.map((e) => e.name));
    const next = S.catalog.optimizers.find((o) => o.available && !used.has(o.name)) || S.catalog.optimizers[0];
    S.entries.push({ name: next.name, hp: defaultHp(next.name) });
    renderEntries();
    runOne(S.entries.length - 1);
  });
  for (const l of S.catalog.lessons) {
    const b = document.createElement("button");
    b.textContent = l.title;
    b.dataset.lesson = l.key;
    b.addEventListener("click", () => loadLesson(l.key).catch((e) => showError(e.message)));
    $("lessons").append(b);
  }
  await setTerrain("quadratic", false);
  S.entries = ["gd", "momentum", "adam"].map((n) => ({ name: n, hp: defaultHp(n) }));
  setSteps(Math.min(S.terrain.steps, S.catalog.limits.max_steps));
  setNoise(0);
  renderEntries();
  await runAll();
  $("map").on("plotly_click", (ev) => {
    const p = ev.points[0];
    S.start = [p.x, p.y];
    runAll();
  });
  document.body.dataset.ready = "1";
}

init().catch((err) => showError(err.message));
