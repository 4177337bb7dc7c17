// The MMR and margin-ratio graph against a spot move of every index (position-builder-graph's mmrData),
// drawn as SVG: MMR on a linear left axis, the margin ratio on a logarithmic right axis, liquidation shaded.

import { find } from './dom.js';
import { formatCompact, formatMove, formatPercent, formatUSD } from './format.js';

/** The graph of `graphResponse` over the range chosen in #graph-range (±10 %, ±25 %, ±50 %, full). */
export function drawGraph(graphResponse) {
  const container = find('#graph');
  const range = Number(find('#graph-range').value);
  const points = graphResponse.mmrData
    .map((point) => ({ move: Number(point.shockFactor), mmr: Number(point.mmr), ratio: point.mmrRatio === '' ? null : Number(point.mmrRatio) }))
    .filter((point) => point.move >= -range - 1e-9 && point.move <= range + 1e-9);
  if (!points.length) {
    container.innerHTML = '<p class="muted">No graph data.</p>';
    return;
  }
  if (points.every((point) => point.mmr === 0)) {
    container.innerHTML = '<p class="muted">No margin requirement anywhere in this range: nothing to plot.</p>';
    return;
  }
  const width = Math.max(280, container.clientWidth || 600);
  const height = width < 480 ? 230 : 280;
  const margin = { left: 58, right: 52, top: 26, bottom: 30 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const firstMove = points[0].move;
  const lastMove = points[points.length - 1].move;
  const xOf = (move) => margin.left + ((move - firstMove) / (lastMove - firstMove || 1)) * plotWidth;
  const mmrTop = Math.max(...points.map((point) => point.mmr), 1) * 1.08;
  const mmrY = (mmr) => margin.top + plotHeight - (mmr / mmrTop) * plotHeight;
  const ratios = points.filter((point) => point.ratio !== null && point.ratio > 0).map((point) => point.ratio);
  const logRatioLow = Math.log10(Math.max(1e-3, Math.min(0.5, ...ratios.map((ratio) => ratio / 1.5))));
  const logRatioHigh = Math.log10(Math.min(1e7, Math.max(2, ...ratios.map((ratio) => ratio * 1.5))));
  const ratioY = (ratio) => margin.top + plotHeight
    - ((Math.log10(Math.min(1e7, Math.max(10 ** logRatioLow, ratio))) - logRatioLow) / (logRatioHigh - logRatioLow)) * plotHeight;
  /** An SVG path through the points; `yOf` returning null lifts the pen (no ratio without an MMR). */
  const pathThrough = (yOf) => {
    let path = '';
    let penDown = false;
    for (const point of points) {
      const y = yOf(point);
      if (y === null) {
        penDown = false;
        continue;
      }
      path += `${penDown ? 'L' : 'M'}${xOf(point.move).toFixed(1)},${y.toFixed(1)}`;
      penDown = true;
    }
    return path;
  };

  // Liquidation zones: where the ratio is at or below 100 %.
  let zones = '';
  for (let start = 0; start < points.length; start++) {
    if (points[start].ratio === null || points[start].ratio > 1) continue;
    let end = start;
    while (end + 1 < points.length && points[end + 1].ratio !== null && points[end + 1].ratio <= 1) end++;
    const left = xOf(points[start].move);
    const right = xOf(points[end].move);
    zones += `<rect class="liq-zone" x="${left.toFixed(1)}" y="${margin.top}" width="${Math.max(2, right - left).toFixed(1)}" height="${plotHeight}"/>`;
    start = end;
  }

  const moveTicks = [];
  const maximumTicks = Math.max(3, Math.floor(plotWidth / 48));
  const tickStep = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5].find((step) => (lastMove - firstMove) / step <= maximumTicks) || 0.5;
  for (let move = Math.ceil(firstMove / tickStep) * tickStep; move <= lastMove + 1e-9; move += tickStep) moveTicks.push(Math.round(move * 1000) / 1000);
  const mmrTicks = [0, 0.25, 0.5, 0.75, 1].map((fraction) => fraction * mmrTop / 1.08);
  const ratioTicks = [];
  for (let exponent = Math.ceil(logRatioLow); exponent <= Math.floor(logRatioHigh); exponent++) ratioTicks.push(10 ** exponent);
  const liquidationY = ratioY(1);

  let svg = `<svg id="graph-svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="Account MMR and margin ratio against a spot move of every index from ${formatMove(firstMove)} to ${formatMove(lastMove)}">`;
  svg += `<g class="legend"><line x1="${margin.left}" y1="12" x2="${margin.left + 18}" y2="12" class="l-mmr"/><text x="${margin.left + 22}" y="16">MMR (USD, left)</text>`
    + `<line x1="${margin.left + 140}" y1="12" x2="${margin.left + 158}" y2="12" class="l-ratio"/><text x="${margin.left + 162}" y="16">margin ratio (log, right)</text></g>`;
  svg += zones;
  svg += mmrTicks.map((mmr) => `<line class="grid" x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${mmrY(mmr)}" y2="${mmrY(mmr)}"/><text class="tick" x="${margin.left - 6}" y="${mmrY(mmr) + 4}" text-anchor="end">${formatCompact(mmr)}</text>`).join('');
  svg += ratioTicks.map((ratio) => `<text class="tick r" x="${margin.left + plotWidth + 6}" y="${ratioY(ratio) + 4}">${ratio >= 1 ? formatCompact(ratio * 100) : ratio * 100}%</text>`).join('');
  svg += moveTicks.map((move) => `<text class="tick" x="${xOf(move)}" y="${height - 10}" text-anchor="middle">${Math.round(move * 100)}%</text>`).join('');
  if (firstMove <= 0 && lastMove >= 0) svg += `<line class="now" x1="${xOf(0)}" x2="${xOf(0)}" y1="${margin.top}" y2="${margin.top + plotHeight}"/>`;
  svg += `<line id="liq-line" class="liq-line" x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${liquidationY}" y2="${liquidationY}"/><text class="liq-label" x="${margin.left + plotWidth - 4}" y="${liquidationY - 5}" text-anchor="end">100 % = liquidation</text>`;
  svg += `<path class="l-mmr" d="${pathThrough((point) => mmrY(point.mmr))}"/><path class="l-ratio" d="${pathThrough((point) => (point.ratio === null ? null : ratioY(point.ratio)))}"/>`;
  svg += `<rect class="frame" x="${margin.left}" y="${margin.top}" width="${plotWidth}" height="${plotHeight}"/><g id="graph-hover" display="none"><line class="cross" y1="${margin.top}" y2="${margin.top + plotHeight}"/><rect class="tip-bg" rx="4"/><text class="tip"></text></g></svg>`;
  container.innerHTML = svg;

  // Hovering shows the nearest point's move, MMR and ratio.
  const graph = find('#graph-svg');
  const hover = find('#graph-hover');
  graph.addEventListener('pointermove', (event) => {
    const bounds = graph.getBoundingClientRect();
    const pointerX = ((event.clientX - bounds.left) / bounds.width) * width;
    const nearest = points.reduce((best, point) => (Math.abs(xOf(point.move) - pointerX) < Math.abs(xOf(best.move) - pointerX) ? point : best), points[0]);
    hover.setAttribute('display', 'inline');
    const crossX = xOf(nearest.move);
    hover.querySelector('.cross').setAttribute('x1', crossX);
    hover.querySelector('.cross').setAttribute('x2', crossX);
    const text = `${formatMove(nearest.move)}: MMR ${formatUSD(nearest.mmr)} · ratio ${nearest.ratio === null ? '∞' : formatPercent(nearest.ratio)}`;
    const tip = hover.querySelector('.tip');
    tip.textContent = text;
    const tipWidth = text.length * 6.3 + 10;
    const tipX = Math.min(Math.max(margin.left, crossX - tipWidth / 2), margin.left + plotWidth - tipWidth);
    tip.setAttribute('x', tipX + 5);
    tip.setAttribute('y', margin.top + 15);
    const background = hover.querySelector('.tip-bg');
    background.setAttribute('x', tipX);
    background.setAttribute('y', margin.top + 2);
    background.setAttribute('width', tipWidth);
    background.setAttribute('height', 18);
  });
  graph.addEventListener('pointerleave', () => hover.setAttribute('display', 'none'));
}
