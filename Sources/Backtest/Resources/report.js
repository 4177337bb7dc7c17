// The backtest report's charts: inline SVG drawn from the JSON embedded in the page. No library, nothing fetched.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("backtest-data").textContent);
  const series = data.series;
  const times = series.time.map((t) => Date.parse(t));
  const n = times.length;
  const NS = "http://www.w3.org/2000/svg";
  const colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"];
  const margin = { left: 64, right: 64, top: 10, bottom: 24 };

  function el(name, attributes, parent) {
    const node = document.createElementNS(NS, name);
    for (const key in attributes) node.setAttribute(key, attributes[key]);
    if (parent) parent.appendChild(node);
    return node;
  }

  // A chart frame: the same x axis (time) for every chart; y from [low, high] (log when asked).
  function frame(svg, low, high, options) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const width = svg.clientWidth || 900;
    const height = svg.clientHeight || 220;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const log = options && options.log;
    if (!(high > low)) high = low + 1;
    const t0 = times[0], t1 = times[n - 1] > times[0] ? times[n - 1] : times[0] + 1;
    const x = (i) => margin.left + ((times[i] - t0) / (t1 - t0)) * (width - margin.left - margin.right);
    const f = (v) => (log ? Math.log(v) : v);
    const y = (v) => margin.top + (1 - (f(v) - f(low)) / (f(high) - f(low))) * (height - margin.top - margin.bottom);
    el("line", { x1: margin.left, x2: width - margin.right, y1: height - margin.bottom, y2: height - margin.bottom, class: "axis" }, svg);
    el("line", { x1: margin.left, x2: margin.left, y1: margin.top, y2: height - margin.bottom, class: "axis" }, svg);
    const ticks = log ? logTicks(low, high) : linearTicks(low, high);
    for (const value of ticks) {
      el("line", { x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value), class: "axis", "stroke-opacity": 0.5 }, svg);
      el("text", { x: margin.left - 6, y: y(value) + 4, "text-anchor": "end" }, svg).textContent = (options && options.format ? options.format : short)(value);
    }
    for (const i of [0, Math.floor((n - 1) / 2), n - 1]) {
      const anchor = i === 0 ? "start" : i === n - 1 ? "end" : "middle";
      el("text", { x: x(i), y: height - 6, "text-anchor": anchor }, svg).textContent = series.time[i].replace(":00.000Z", "Z").replace("T", " ");
    }
    return { x, y, width, height, svg };
  }

  function linearTicks(low, high) {
    const span = high - low;
    const step = Math.pow(10, Math.floor(Math.log10(span / 4)));
    const nice = [1, 2, 5, 10].map((k) => k * step).find((s) => span / s <= 6) || step * 10;
    const ticks = [];
    for (let v = Math.ceil(low / nice) * nice; v <= high + 1e-9; v += nice) ticks.push(v);
    return ticks;
  }

  function logTicks(low, high) {
    const ticks = [];
    for (let e = Math.floor(Math.log10(low)); e <= Math.ceil(Math.log10(high)); e++) {
      for (const k of [1, 2, 5]) {
        const v = k * Math.pow(10, e);
        if (v >= low && v <= high) ticks.push(v);
      }
    }
    return ticks;
  }

  function short(v) {
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "B";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
    if (a >= 100) return v.toFixed(0);
    return +v.toPrecision(3) + "";
  }

  function line(chart, values, color, width) {
    let d = "";
    values.forEach((v, i) => {
      if (v === null || v === undefined || !isFinite(v)) return;
      d += (d === "" || values[i - 1] === null ? "M" : "L") + chart.x(i).toFixed(1) + "," + chart.y(v).toFixed(1);
    });
    return el("path", { d, fill: "none", stroke: color, "stroke-width": width || 1.5 }, chart.svg);
  }

  function band(chart, lows, highs, color, opacity) {
    const top = [], bottom = [];
    lows.forEach((low, i) => {
      if (low === null || highs[i] === null) return;
      top.push(chart.x(i).toFixed(1) + "," + chart.y(highs[i]).toFixed(1));
      bottom.unshift(chart.x(i).toFixed(1) + "," + chart.y(low).toFixed(1));
    });
    if (top.length === 0) return null;
    return el("path", { d: "M" + top.concat(bottom).join("L") + "Z", fill: color, "fill-opacity": opacity, stroke: "none" }, chart.svg);
  }

  function bars(chart, values, color) {
    const width = Math.max(1, (chart.width - margin.left - margin.right) / Math.max(n, 1) - 0.5);
    values.forEach((v, i) => {
      if (!v) return;
      el("rect", { x: (chart.x(i) - width / 2).toFixed(1), y: chart.y(v).toFixed(1), width: width.toFixed(1), height: Math.max(0.5, chart.y(0) - chart.y(v)).toFixed(1), fill: color }, chart.svg);
    });
  }

  function level(chart, value, color) {
    el("line", { x1: margin.left, x2: chart.width - margin.right, y1: chart.y(value), y2: chart.y(value), stroke: color, "stroke-width": 1.2, "stroke-dasharray": "5 3" }, chart.svg);
  }

  function extent(arrays) {
    let low = Infinity, high = -Infinity;
    for (const values of arrays) for (const v of values) if (v !== null && isFinite(v)) { low = Math.min(low, v); high = Math.max(high, v); }
    return low === Infinity ? [0, 1] : [low, high];
  }

  const charts = [];

  function drawPrice() {
    const svg = document.getElementById("chart-price");
    if (!svg) return;
    const coins = Object.keys(series.prices);
    const scaled = coins.map((coin) => {
      const p = series.prices[coin];
      const first = data.path.files.find((f) => f.coin === coin).first;
      return { coin, close: p.close.map((v) => (100 * v) / first), low: p.low.map((v) => (100 * v) / first), high: p.high.map((v) => (100 * v) / first) };
    });
    const [low, high] = extent(scaled.flatMap((s) => [s.low, s.high]));
    const chart = frame(svg, low * 0.98, high * 1.02, { format: (v) => v.toFixed(0) + " %" });
    scaled.forEach((s, k) => {
      band(chart, s.low, s.high, colors[k % colors.length], 0.15);
      line(chart, s.close, colors[k % colors.length], 1.6).setAttribute("data-series", s.coin);
      el("text", { x: margin.left + 8 + 70 * k, y: margin.top + 12, fill: colors[k % colors.length], class: "legend" }, svg).textContent = s.coin;
    });
    charts.push({ chart, describe: (i) => coins.map((c) => `${c} ${series.prices[c].close[i]}`).join(" · ") });
  }

  function drawRatio(run) {
    const svg = document.getElementById("chart-ratio");
    if (!svg || !run.ratioP50) return;
    const clip = (values) => values.map((v) => (v === null ? null : Math.min(Math.max(v, 0.05), 1000)));
    const p5 = clip(run.ratioP5), p25 = clip(run.ratioP25), p50 = clip(run.ratioP50), p75 = clip(run.ratioP75), p95 = clip(run.ratioP95);
    let [low, high] = extent([p5, p95]);
    low = Math.min(low, 0.9);
    high = Math.max(high, 1.5);
    const chart = frame(svg, low * 0.9, high * 1.1, { log: true, format: (v) => +(v * 100).toPrecision(3) + " %" });
    band(chart, p5, p95, "#9ecae1", 0.45);
    band(chart, p25, p75, "#4292c6", 0.45);
    line(chart, p50, "#08306b", 1.6).setAttribute("data-series", "median");
    level(chart, 1.0, "#c0392b");
    level(chart, 1.1, "#d68910");
    charts.push({ chart, describe: (i) => `ratio p5 ${fmt(run.ratioP5[i])} · median ${fmt(run.ratioP50[i])} · p95 ${fmt(run.ratioP95[i])}` });
  }

  function drawLiquidations(run) {
    const svg = document.getElementById("chart-liquidations");
    if (!svg || !run.liquidations) return;
    const maxBars = Math.max(1, ...run.liquidations);
    const [fundLow, fundHigh] = extent([run.fundUSD, [0]]);
    const chart = frame(svg, 0, maxBars * 1.1, { format: (v) => short(v) });
    bars(chart, run.liquidations, "#c0392b");
    // The fund on its own scale, labelled on the right.
    const scale = (v) => ((v - fundLow) / (fundHigh - fundLow || 1)) * maxBars * 1.1;
    line(chart, run.fundUSD.map(scale), "#2e8b57", 1.8).setAttribute("data-series", "fund");
    for (const v of [fundLow, fundHigh]) {
      el("text", { x: chart.width - margin.right + 6, y: chart.y(scale(v)) + 4, fill: "#2e8b57" }, svg).textContent = short(v) + " $";
    }
    charts.push({ chart, describe: (i) => `liquidations ${run.liquidations[i]} · fund ${run.fundUSD[i]} USD · margin calls ${run.marginCallAccounts[i]}` });
  }

  function drawBreaches(run) {
    const svg = document.getElementById("chart-breaches");
    if (!svg) return;
    const maxBars = Math.max(1, ...run.breaches);
    const chart = frame(svg, 0, maxBars * 1.1, { format: (v) => short(v) });
    bars(chart, run.breaches, "#8e44ad");
    charts.push({ chart, describe: (i) => `breaches ${run.breaches[i]}` });
  }

  function fmt(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(1) + " %"; }

  function draw() {
    charts.length = 0;
    const select = document.getElementById("run-select");
    const run = series.runs[select ? +select.value : 0] || series.runs[0];
    drawPrice();
    if (run) {
      drawRatio(run);
      drawLiquidations(run);
      drawBreaches(run);
    }
    for (const { chart } of charts) {
      chart.cursor = el("line", { x1: 0, x2: 0, y1: margin.top, y2: chart.height - margin.bottom, class: "cursor", visibility: "hidden" }, chart.svg);
      chart.svg.addEventListener("mousemove", hover);
      chart.svg.addEventListener("mouseleave", () => charts.forEach((c) => c.chart.cursor.setAttribute("visibility", "hidden")));
    }
  }

  // One cursor across every chart: the same instant everywhere.
  function hover(event) {
    const svg = event.currentTarget;
    const box = svg.getBoundingClientRect();
    const chart = charts.find((c) => c.chart.svg === svg).chart;
    const px = ((event.clientX - box.left) / box.width) * chart.width;
    let best = 0;
    for (let i = 0; i < n; i++) if (Math.abs(chart.x(i) - px) < Math.abs(chart.x(best) - px)) best = i;
    const parts = [series.time[best]];
    for (const c of charts) {
      c.chart.cursor.setAttribute("x1", c.chart.x(best));
      c.chart.cursor.setAttribute("x2", c.chart.x(best));
      c.chart.cursor.setAttribute("visibility", "visible");
      parts.push(c.describe(best));
    }
    document.getElementById("hover").textContent = parts.join(" | ");
  }

  const select = document.getElementById("run-select");
  if (select) select.addEventListener("change", draw);
  window.addEventListener("resize", draw);
  draw();
  document.body.setAttribute("data-charts", String(charts.length));
})();
