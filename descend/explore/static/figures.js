// Drawing the explorer's figures from the data the Python side computed.
// Shared by the live page (explore.html) and the lessons page written by `descend learn`;
// nothing here computes a descent: paths, values and verdicts come from descend.
"use strict";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const PLOT_CONFIG = { responsive: true, displaylogo: false };

// What the map and the surface show: log10(1 + f - f*) where f* is known (one scale for
// Rosenbrock's 0..2500 and the quadratic's 0..40), plain f on terrains unbounded below.
function shown(terrain, f) {
  return terrain.f_min === null ? f : Math.log10(1 + Math.max(f - terrain.f_min, 0));
}

function runLabel(run) {
  const hp = Object.entries(run.hp).filter(([k]) => k === "lr" || k === "momentum")
    .map(([k, v]) => `${k}=${+v.toPrecision(3)}`).join(" ");
  return `${run.name} ${hp}`;
}

function markers(points, name, symbol, color) {
  return {
    x: points.map((p) => p[0]), y: points.map((p) => p[1]), mode: "markers", name,
    marker: { symbol, size: 11, color, line: { color: "white", width: 1 } }, hoverinfo: "name+x+y",
  };
}

// The shown grid, computed once per terrain: the same array each redraw lets Plotly.react
// skip re-contouring the map and re-meshing the surface.
function shownGrid(terrain) {
  if (!terrain.shownZ) terrain.shownZ = terrain.z.map((row) => row.map((v) => shown(terrain, v)));
  return terrain.shownZ;
}

function mapFigure(terrain, runs, start) {
  const z = shownGrid(terrain);
  const data = [{
    type: "contour", x: terrain.x, y: terrain.y, z, colorscale: "Viridis", ncontours: 30,
    showscale: false, name: "terrain", hovertemplate: "x=%{x:.3g} y=%{y:.3g}<extra>click: start here</extra>",
  }];
  // Paths as plain lines (a marker per step is an SVG node per step: slow to redraw), and
  // every run's last point as one marker trace.
  const ends = { x: [], y: [], color: [] };
  runs.forEach((run, i) => {
    if (!run) return;
    const color = COLORS[i % COLORS.length];
    data.push({
      x: run.path.map((p) => p[0]), y: run.path.map((p) => p[1]), mode: "lines",
      name: runLabel(run), line: { color, width: 2 }, hoverinfo: "name",
    });
    const last = run.path[run.path.length - 1];
    ends.x.push(last[0]);
    ends.y.push(last[1]);
    ends.color.push(color);
  });
  data.push({
    x: ends.x, y: ends.y, mode: "markers", name: "end", hoverinfo: "x+y",
    marker: { size: 8, color: ends.color, line: { color: "black", width: 1 } },
  });
  if (terrain.minima.length) data.push(markers(terrain.minima, "minimum", "star", "gold"));
  if (terrain.saddles.length) data.push(markers(terrain.saddles, "saddle", "x", "red"));
  if (start) data.push(markers([start], "start", "circle", "white"));
  const [[x0, x1], [y0, y1]] = terrain.domain;
  return {
    data,
    layout: {
      title: { text: `${terrain.name}: ${terrain.description}`, font: { size: 13 } }, showlegend: false,
      xaxis: { range: [x0, x1], title: { text: "x" } }, yaxis: { range: [y0, y1], title: { text: "y" } },
      margin: { l: 50, r: 10, t: 40, b: 40 }, uirevision: terrain.name,
    },
  };
}

function gapFigure(terrain, runs) {
  const known = terrain.f_min !== null;
  const data = [];
  runs.forEach((run, i) => {
    if (!run) return;
    const y = known ? run.gap.map((g) => Math.max(g, 1e-16)) : run.f;
    data.push({ y, mode: "lines", name: runLabel(run), line: { color: COLORS[i % COLORS.length] } });
  });
  return {
    data,
    layout: {
      title: { text: known ? "f − f* per iteration" : "f per iteration (no minimum)" },
      xaxis: { title: { text: "iteration" } },
      yaxis: { type: known ? "log" : "linear", exponentformat: "power" },
      legend: { orientation: "h", y: -0.25 }, margin: { l: 60, r: 10, t: 40, b: 40 },
    },
  };
}

function surfaceFigure(terrain, runs) {
  const z = shownGrid(terrain);
  // Paths float a little above the surface, or it hides them.
  const flat = z.flat();
  const lift = 0.02 * (Math.max(...flat) - Math.min(...flat));
  const data = [{ type: "surface", x: terrain.x, y: terrain.y, z, colorscale: "Viridis", showscale: false, opacity: 0.9 }];
  runs.forEach((run, i) => {
    if (!run) return;
    data.push({
      type: "scatter3d", mode: "lines", x: run.path.map((p) => p[0]), y: run.path.map((p) => p[1]),
      z: run.f.map((f) => shown(terrain, f) + lift), name: runLabel(run),
      line: { color: COLORS[i % COLORS.length], width: 5 },
    });
  });
  return {
    data,
    layout: {
      title: { text: "surface" }, showlegend: false, margin: { l: 0, r: 0, t: 30, b: 0 },
      scene: { zaxis: { title: { text: terrain.f_min === null ? "f" : "log10(1 + f − f*)" } } },
      uirevision: terrain.name,
    },
  };
}

function verdictList(el, runs) {
  el.replaceChildren();
  runs.forEach((run, i) => {
    if (!run) return;
    const li = document.createElement("li");
    li.dataset.kind = run.kind;
    li.className = "verdict";
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = COLORS[i % COLORS.length];
    const b = document.createElement("b");
    b.textContent = `${runLabel(run)}: ${run.label}`;
    const why = document.createElement("div");
    why.className = "reason";
    why.textContent = run.reason;
    li.append(sw, b, why);
    el.append(li);
  });
}

// The 3-D view costs the most to draw (WebGL); while a slider moves it follows the map
// and the plot after SURFACE_DELAY ms of calm instead of on every step of the drag.
const SURFACE_DELAY = 250;
let surfaceTimer = null;

// Draws (or redraws in place) the map, the gap plot and the verdicts; then the surface.
function drawRuns(ids, terrain, runs, start) {
  const jobs = [
    Plotly.react(ids.map, ...Object.values(mapFigure(terrain, runs, start)), PLOT_CONFIG),
    Plotly.react(ids.gap, ...Object.values(gapFigure(terrain, runs)), PLOT_CONFIG),
  ];
  if (ids.surface) {
    clearTimeout(surfaceTimer);
    surfaceTimer = setTimeout(() => {
      const fig = surfaceFigure(terrain, runs);
      Plotly.react(ids.surface, fig.data, fig.layout, PLOT_CONFIG);
    }, SURFACE_DELAY);
  }
  verdictList(document.getElementById(ids.verdicts), runs);
  return Promise.all(jobs);
}

function drawFigure(id, figure) {
  const layout = Object.assign({ margin: { l: 60, r: 20, t: 40, b: 50 } }, figure.layout);
  return Plotly.react(id, figure.data, layout, PLOT_CONFIG);
}

window.ExploreFigures = { COLORS, drawRuns, drawFigure, mapFigure };
