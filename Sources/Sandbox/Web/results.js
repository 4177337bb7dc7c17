// The results column: the account summary, the comparison (PM vs classic, or margin models side by side),
// one card per risk unit (MR1–MR9 and the MR1 heat map; Derive portfolios), and per-position attribution.

import { find } from './dom.js';
import { escapeHTML, formatCompact, formatMove, formatNumber, formatPercent, formatTwoDecimals, formatUSD, isNumeric } from './format.js';
import { showMarksAsPlaceholders } from './portfolio-table.js';
import { marginModel } from './request.js';

const MR_COMPONENTS = [
  ['mr1', 'spot × vol shock'], ['mr2', 'theta decay'], ['mr3', 'vol term structure'], ['mr4', 'basis'],
  ['mr5', 'interest rate'], ['mr6', 'extreme move'], ['mr7', 'minimum charge'], ['mr8', 'borrowing (account)'],
  ['mr9', 'stablecoin depeg'],
];
/** The MR1 grid's rows: the response's key, the row label, and OKX's `volShock` name of that state. */
const VOLATILITY_ROWS = [['volShockUp', 'Vol up', 'up'], ['volSame', 'Vol same', 'unchange'], ['volShockDown', 'Vol down', 'down']];

/** One summary figure: its text, and the API's exact value in data-value (which the tests read). */
function setFigure(id, text, apiValue) {
  const figure = find('#' + id);
  figure.textContent = text;
  if (apiValue !== undefined) figure.dataset.value = apiValue;
}

/** Renders the three answers of one request: `build` (position-builder), `comparison`, and the request `body`. */
export function renderResults({ build, comparison, body }) {
  const derive = build.model === 'derive-pm2';
  const portfolioMargin = derive || body.acctLv === '4';
  setFigure('equity', formatUSD(build.eqUsd));
  setFigure('adj-eq', formatUSD(build.adjEq));
  setFigure('total-mmr', formatUSD(build.totalMmr), build.totalMmr);
  setFigure('total-imr', formatUSD(build.totalImr), build.totalImr);
  setFigure('margin-ratio', build.marginRatio === '' ? '∞ (no MMR)' : formatPercent(build.marginRatio), build.marginRatio);
  setFigure('acct-lever', isNumeric(build.acctLever) ? formatTwoDecimals(build.acctLever) + '×' : '—', build.acctLever);
  setFigure('avail-eq', formatUSD(Number(build.adjEq) - Number(build.totalImr)));
  setFigure('upl', formatUSD(build.upl));
  const ratio = Number(build.marginRatio);
  find('#margin-ratio').parentElement.dataset.level =
    build.marginRatio === '' ? 'safe' : ratio <= 1 ? 'liquidation' : ratio <= 3 ? 'warning' : 'safe';
  find('#mini-summary').innerHTML =
    `MMR <b>${formatUSD(build.totalMmr)}</b> · ratio <b>${build.marginRatio === '' ? '∞' : formatPercent(build.marginRatio)}</b>`;
  const modeBadge = find('#summary-mode');
  modeBadge.textContent = derive ? 'Derive PM2 (derive-pm2)' : portfolioMargin ? 'Portfolio margin (acctLv 4)' : 'Classic (acctLv 3)';
  modeBadge.dataset.mode = derive ? 'derive' : portfolioMargin ? 'pm' : 'classic';
  find('#footnote').textContent = derive
    ? `Model ${build.model}, parameters ${build.paramsId}, market ${build.marketTs}. USD figures; margin ratio = equity / MMR (Derive's MM surplus ≥ 0 exactly when it is ≥ 100 %). ${(build.notes || []).join(' ')}`
    : `Model ${build.model || 'okx-pm'}, parameters ${build.paramsId}, market ${build.marketTs}. USD figures; margin ratio = adjusted equity / MMR, liquidation at 100 %.`;
  if (comparison.models) renderModelComparison(comparison);
  else renderModeComparison(comparison, body.acctLv);
  if (derive) {
    renderDerivePortfolios(build);
    renderDeriveAttribution(build);
  } else {
    renderRiskUnits(build, portfolioMargin);
    renderAttribution(build, portfolioMargin);
  }
  const marks = new Map();
  for (const unit of build.riskUnitData) for (const position of unit.portfolios || []) marks.set(position.instId, position.markPx);
  for (const position of build.positions || []) marks.set(position.instId, position.markPx);
  showMarksAsPlaceholders(marks);
}

/** Margin models side by side (the compare endpoint's answer when another model is chosen). */
function renderModelComparison(comparison) {
  find('#compare-h').textContent = 'Margin models side by side';
  const models = comparison.models || [];
  const figures = [
    ['Total MMR', 'totalMmr', formatUSD], ['Total IMR', 'totalImr', formatUSD], ['Margin ratio', 'marginRatio', formatPercent],
    ['Available equity', 'availEq', formatUSD], ['Equity', 'eqUsd', formatUSD],
  ];
  let html = `<thead><tr><th></th>${models.map((model) => `<th class="${model.model === marginModel() ? 'current' : ''}" data-model="${escapeHTML(model.model)}">${escapeHTML(model.model)}</th>`).join('')}</tr></thead><tbody>`;
  for (const [label, key, format] of figures) {
    html += `<tr><th scope="row">${label}</th>${models.map((model) => `<td data-model="${escapeHTML(model.model)}" data-key="${key}" data-value="${escapeHTML(model[key])}">${format(model[key])}</td>`).join('')}</tr>`;
  }
  const unitNames = [...new Set(models.flatMap((model) => (model.riskUnits || []).map((unit) => unit.riskUnit)))];
  for (const name of unitNames) {
    html += `<tr class="sub"><th scope="row">${escapeHTML(name)} MMR</th>${models.map((model) => {
      const unit = (model.riskUnits || []).find((candidate) => candidate.riskUnit === name);
      const drivers = unit ? (unit.drivers || []).map((driver) => `${driver.name}: ${formatUSD(driver.usd)}`).join('\n') : '';
      return `<td title="${escapeHTML(drivers)}">${unit ? formatUSD(unit.mmr) : '—'}</td>`;
    }).join('')}</tr>`;
  }
  html += `<tr class="sub"><th scope="row">Sets the MMR</th>${models.map((model) => `<td class="small">${(model.riskUnits || []).filter((unit) => unit.dominant).map((unit) => `${escapeHTML(unit.riskUnit)}: ${escapeHTML(unit.dominant)}`).join('<br>') || '—'}</td>`).join('')}</tr>`;
  find('#compare').innerHTML = html + '</tbody>';
}

/** Portfolio margin next to classic, with classic − PM, for the account and per risk unit. */
function renderModeComparison(comparison, acctLv) {
  find('#compare-h').textContent = 'Portfolio margin vs classic';
  const figures = [
    ['Total MMR', 'totalMmr', 'mmr', formatUSD], ['Total IMR', 'totalImr', 'imr', formatUSD], ['Margin ratio', 'mgnRatio', 'ratio', formatPercent],
    ['Available equity', 'availEq', 'avail', formatUSD], ['Adjusted equity', 'adjEq', 'adjeq', formatUSD],
  ];
  const { portfolioMargin, classic, difference } = comparison;
  const classicMinusPM = (key) => (difference[key] !== undefined ? difference[key]
    : isNumeric(classic[key]) && isNumeric(portfolioMargin[key]) ? String(Number(classic[key]) - Number(portfolioMargin[key])) : '');
  const signed = (value, format) => (isNumeric(value) ? (Number(value) > 0 ? '+' : '') + format(value) : '—');
  const higherIsWorse = (value) => (Number(value) > 0 ? 'worse' : Number(value) < 0 ? 'better' : '');
  let html = `<thead><tr><th></th><th class="${acctLv === '4' ? 'current' : ''}"><span class="long">Portfolio margin</span><abbr class="short" title="Portfolio margin">PM</abbr></th><th class="${acctLv === '3' ? 'current' : ''}">Classic</th><th><span class="long">Classic − PM</span><span class="short">Δ</span></th></tr></thead><tbody>`;
  for (const [label, key, id, format] of figures) {
    const delta = classicMinusPM(key);
    const deltaClass = id === 'mmr' || id === 'imr' ? higherIsWorse(delta) : '';
    html += `<tr><th scope="row">${label}</th><td id="cmp-pm-${id}" data-value="${escapeHTML(portfolioMargin[key])}">${format(portfolioMargin[key])}</td>`
      + `<td id="cmp-classic-${id}" data-value="${escapeHTML(classic[key])}">${format(classic[key])}</td>`
      + `<td id="cmp-diff-${id}" class="${deltaClass}" data-value="${escapeHTML(delta)}">${signed(delta, format)}</td></tr>`;
  }
  const unitMmr = new Map();
  for (const unit of portfolioMargin.riskUnits) unitMmr.set(unit.riskUnit, { portfolioMargin: unit.mmr });
  for (const unit of classic.riskUnits) {
    if (!unitMmr.has(unit.riskUnit)) unitMmr.set(unit.riskUnit, {});
    unitMmr.get(unit.riskUnit).classic = unit.mmr;
  }
  for (const [unit, mmr] of unitMmr) {
    const delta = isNumeric(mmr.portfolioMargin) && isNumeric(mmr.classic) ? Number(mmr.classic) - Number(mmr.portfolioMargin) : '';
    html += `<tr class="sub"><th scope="row">${escapeHTML(unit)} MMR</th><td>${formatUSD(mmr.portfolioMargin)}</td><td>${formatUSD(mmr.classic)}</td>`
      + `<td class="${delta > 0 ? 'worse' : delta < 0 ? 'better' : ''}">${signed(delta, formatUSD)}</td></tr>`;
  }
  find('#compare').innerHTML = html + '</tbody>';
}

function renderRiskUnits(build, portfolioMargin) {
  const container = find('#units');
  if (!build.riskUnitData.length) {
    container.innerHTML = '<div class="panel muted">No risk units: add derivative positions to see MR1–MR9 and the MR1 grid.</div>';
    return;
  }
  container.innerHTML = build.riskUnitData.map((unit) => (portfolioMargin ? portfolioMarginCard(unit) : classicCard(unit))).join('');
}

/** Derive PM2: one card per portfolio with its worst loss, contingencies and scenario P&L. */
function renderDerivePortfolios(build) {
  const container = find('#units');
  if (!build.riskUnitData.length) {
    container.innerHTML = '<div class="panel muted">Nothing to margin.</div>';
    return;
  }
  container.innerHTML = build.riskUnitData.map((unit) => {
    const contingencies = unit.contingencies || {};
    const drivers = (unit.drivers || []).map((driver) => `<li>${escapeHTML(driver.name)}: <b>${formatUSD(driver.usd)}</b></li>`).join('')
      || '<li class="muted">nothing required</li>';
    const holdsRisk = (unit.expiries || []).length || Number(unit.perpValue) !== 0 || Number(unit.collateralValue) !== 0;
    const scenarios = holdsRisk ? unit.scenarios || [] : [];
    const scenarioName = (scenario) => (scenario.volShock === 'linear' || scenario.volShock === 'abs'
      ? escapeHTML(scenario.volShock) + ' skew'
      : `spot ×${formatNumber(scenario.spotShock)}, vol ${escapeHTML(scenario.volShock)}${scenario.dampening === '1' ? '' : ` (damp ${formatNumber(scenario.dampening)})`}`);
    const rows = scenarios.map((scenario) => `<tr data-pnl="${escapeHTML(scenario.pnl)}"><th scope="row">${scenarioName(scenario)}</th><td class="${Number(scenario.pnl) < 0 ? 'neg' : ''}">${formatUSD(scenario.pnl)}</td></tr>`).join('');
    return `<article class="panel unit-card derive" data-unit="${escapeHTML(unit.riskUnit)}">
  <header class="unit-head"><h2>${escapeHTML(unit.riskUnit)} <small class="muted">Derive portfolio</small></h2>
    <span class="dominant-badge" title="what sets this portfolio's MMR">${escapeHTML(unit.dominant || 'nothing required')}</span></header>
  <dl class="figs small-figs">
    <div class="key"><dt>MMR</dt><dd class="unit-mmr" data-value="${escapeHTML(unit.mmr)}">${formatUSD(unit.mmr)}</dd></div>
    <div><dt>IMR</dt><dd class="unit-imr" data-value="${escapeHTML(unit.imr)}">${formatUSD(unit.imr)}</dd></div>
    <div><dt>MtM + cash</dt><dd>${formatUSD(Number(unit.mtm) + Number(unit.cash))}</dd></div>
    <div><dt>Worst loss</dt><dd>${formatUSD(unit.worstLoss)} <small class="muted">${escapeHTML(unit.worstScenario || '')}</small></dd></div>
  </dl>
  <ul class="drivers small">${drivers}</ul>
  <p class="small muted">Contingencies (USD): perp ${formatUSD(contingencies.perpMm)} + ${formatUSD(contingencies.perpIm)} IM · naked shorts ${formatUSD(contingencies.optionMm)} + ${formatUSD(contingencies.optionIm)} IM · collateral ${formatUSD(contingencies.collateralMm)} + ${formatUSD(contingencies.collateralIm)} IM · oracle ${formatUSD(contingencies.oracleIm)} IM · basis ${formatUSD(unit.basisContingency)}</p>
  <p class="formula small muted">MMR = −${formatNumber(unit.mmFactor)} × min(basis contingency, worst scenario P&amp;L) + MM contingencies; IMR uses ×${formatNumber(unit.imFactor)} and adds the IM contingencies.</p>
  ${rows ? `<details><summary>Scenario P&amp;L (USD)</summary><table class="num-table derive-scenarios">${rows}</table></details>` : ''}
</article>`;
  }).join('');
}

function renderDeriveAttribution(build) {
  const positions = build.positions || [];
  find('#attribution').innerHTML = '<thead><tr><th>Instrument</th><th>Contracts</th><th>Derive asset</th><th>Coins</th><th>Portfolio</th></tr></thead><tbody>'
    + (positions.length
      ? positions.map((position) => `<tr data-inst="${escapeHTML(position.instId)}"><th scope="row">${escapeHTML(position.instId)}</th><td>${formatNumber(position.pos)}</td><td>${escapeHTML(position.deriveAsset)}</td><td>${formatNumber(position.coins)}</td><td>${escapeHTML(position.riskUnit)}</td></tr>`).join('')
      : '<tr><td colspan="5" class="muted">No positions.</td></tr>')
    + '</tbody>';
}

/** The spot move at which the account reaches liquidation, or "none" within ±99 %. */
function liquidationMoveText(move, direction) {
  return isNumeric(move)
    ? `<b>${formatMove(move)}</b>`
    : `<span class="muted">none ${direction === 'down' ? 'down to −99 %' : 'up to +99 %'}</span>`;
}

function portfolioMarginCard(unit) {
  const values = MR_COMPONENTS.map(([key]) => Number(unit[key]) || 0);
  const largest = Math.max(...values, 1e-12);
  const dominant = String(unit.dominant || '').toLowerCase();
  const bars = MR_COMPONENTS.map(([key, description], index) => `<div class="mr-bar${key === dominant ? ' dominant' : ''}${key === 'mr8' ? ' aside' : ''}" data-mr="${key.toUpperCase()}" role="listitem">`
    + `<span class="mr-name">${key.toUpperCase()}</span><span class="mr-desc">${description}</span>`
    + `<span class="bar" aria-hidden="true"><span style="width:${(100 * values[index] / largest).toFixed(2)}%"></span></span>`
    + `<span class="mr-val" data-value="${escapeHTML(unit[key])}">${formatUSD(unit[key])}</span></div>`).join('');
  return `<article class="panel unit-card" data-unit="${escapeHTML(unit.riskUnit)}">
  <header class="unit-head"><h2>${escapeHTML(unit.riskUnit)} <small class="muted">${escapeHTML(unit.tier || '')}</small></h2>
    <span class="dominant-badge" title="the component that sets this unit's MMR">${escapeHTML(unit.dominant)} sets the MMR</span></header>
  <dl class="figs small-figs">
    <div class="key"><dt>MMR</dt><dd class="unit-mmr" data-value="${escapeHTML(unit.mmr)}">${formatUSD(unit.mmr)}</dd></div>
    <div><dt>IMR</dt><dd class="unit-imr" data-value="${escapeHTML(unit.imr)}">${formatUSD(unit.imr)}</dd></div>
    <div><dt>UPL</dt><dd>${formatUSD(unit.upl)}</dd></div>
    <div class="liq"><dt>Liquidation at spot move</dt><dd class="liq-moves" data-down="${escapeHTML(unit.liqMoves?.down ?? '')}" data-up="${escapeHTML(unit.liqMoves?.up ?? '')}">${liquidationMoveText(unit.liqMoves?.down, 'down')} / ${liquidationMoveText(unit.liqMoves?.up, 'up')}</dd></div>
  </dl>
  <div class="mr-bars" role="list" aria-label="${escapeHTML(unit.riskUnit)} MR1 to MR9">${bars}</div>
  <p class="formula small muted">MMR = max(max(MR1, MR2, MR6) + MR3 + MR4 + MR5 + MR9, MR7) · MR8 is the account's borrowing MMR, counted once.</p>
  <h3>MR1 grid: P&amp;L (USD) by spot move and volatility</h3>
  ${mr1HeatMap(unit)}
  <p class="greeks small muted">Δ ${formatNumber(unit.delta)} · Γ ${formatNumber(unit.gamma)} · Vega ${formatNumber(unit.vega)} · Θ ${formatNumber(unit.theta)} · MR6 worst ${formatUSD(unit.mr6FinalResult?.pnl)} at ${formatMove(unit.mr6FinalResult?.spotShock)}</p>
</article>`;
}

/** A cell's background: red for a loss, green for a gain, stronger with the P&L's size. */
function heatColor(pnl, largestLoss) {
  if (Math.abs(pnl) < 1e-9) return 'rgb(246,247,249)';
  const alpha = (0.1 + 0.8 * Math.sqrt(Math.min(1, Math.abs(pnl) / largestLoss))).toFixed(3);
  return pnl < 0 ? `rgba(220,38,38,${alpha})` : `rgba(22,163,74,${alpha})`;
}

/** The MR1 grid: volatility states by spot moves, the cell that sets MR1 marked "worst". */
function mr1HeatMap(unit) {
  const scenarios = unit.mr1Scenarios || {};
  // Object keys like "0" would be reordered by JavaScript: sort the moves numerically.
  const moves = [...new Set(VOLATILITY_ROWS.flatMap(([key]) => Object.keys(scenarios[key] || {})))].sort((a, b) => a - b);
  const cells = [];
  for (const [key, , okxName] of VOLATILITY_ROWS) {
    for (const move of moves) cells.push({ key, okxName, move, pnl: Number(scenarios[key]?.[move]) });
  }
  if (!cells.length) return '<p class="muted">No MR1 grid.</p>';
  const final = unit.mr1FinalResult || {};
  const worst = cells.find((cell) => cell.okxName === final.volShock && Number(cell.move) === Number(final.spotShock))
    || cells.reduce((lowest, cell) => (cell.pnl < lowest.pnl ? cell : lowest), cells[0]);
  const largest = Math.max(...cells.map((cell) => Math.abs(cell.pnl)), 1e-9);
  let html = `<div class="heat-wrap"><table class="heatmap" data-unit="${escapeHTML(unit.riskUnit)}"><thead><tr><th scope="col"><span class="sr-only">Volatility</span></th>`;
  html += moves.map((move) => `<th scope="col">${formatMove(move)}</th>`).join('') + '</tr></thead><tbody>';
  for (const [key, label] of VOLATILITY_ROWS) {
    html += `<tr><th scope="row">${label}</th>`;
    for (const cell of cells.filter((candidate) => candidate.key === key)) {
      const isWorst = cell === worst;
      const dark = Math.abs(cell.pnl) / largest > 0.55;
      html += `<td class="heat-cell${isWorst ? ' worst' : ''}${dark ? ' dark' : ''}" style="background:${heatColor(cell.pnl, largest)}" data-spot="${escapeHTML(cell.move)}" data-vol="${key}" data-pnl="${escapeHTML(scenarios[key][cell.move])}" title="${label}, spot ${formatMove(cell.move)}: ${formatUSD(cell.pnl)} USD${isWorst ? ' (worst: sets MR1)' : ''}">${formatCompact(cell.pnl)}${isWorst ? '<span class="worst-tag">worst</span>' : ''}</td>`;
    }
    html += '</tr>';
  }
  const worstLabel = VOLATILITY_ROWS.find(([key]) => key === worst.key)[1].toLowerCase();
  return html + `</tbody></table></div><p class="small worst-note">Worst cell ${formatUSD(worst.pnl)} USD (spot ${formatMove(worst.move)}, ${worstLabel}) → MR1 ${formatUSD(unit.mr1)}</p>`;
}

function classicCard(unit) {
  return `<article class="panel unit-card classic" data-unit="${escapeHTML(unit.riskUnit)}">
  <header class="unit-head"><h2>${escapeHTML(unit.riskUnit)}</h2><span class="muted small">classic: per-position requirements</span></header>
  <dl class="figs small-figs">
    <div class="key"><dt>MMR</dt><dd class="unit-mmr" data-value="${escapeHTML(unit.mmr)}">${formatUSD(unit.mmr)}</dd></div>
    <div><dt>IMR</dt><dd class="unit-imr" data-value="${escapeHTML(unit.imr)}">${formatUSD(unit.imr)}</dd></div>
    <div><dt>UPL</dt><dd>${formatUSD(unit.upl)}</dd></div>
  </dl>
  <p class="small muted">MR1–MR9 and the MR1 grid exist in portfolio margin only; switch the mode to see them.</p>
</article>`;
}

/** PM: each position's worst-cell P&L and marginal MMR by unit (they sum to the worst cell); classic: per-position MMR. */
function renderAttribution(build, portfolioMargin) {
  const table = find('#attribution');
  if (!portfolioMargin) {
    const positions = build.positions || [];
    table.innerHTML = '<thead><tr><th>Instrument</th><th>Size</th><th>MMR</th><th>IMR</th><th>Lever</th><th>Max lever</th><th>Mark</th><th>Notional USD</th></tr></thead><tbody>'
      + (positions.length
        ? positions.map((position) => `<tr data-inst="${escapeHTML(position.instId)}"><th scope="row">${escapeHTML(position.instId)}</th><td>${formatNumber(position.pos)}</td><td class="marginal" data-value="${escapeHTML(position.mmr)}">${formatUSD(position.mmr)}</td><td>${formatUSD(position.imr)}</td><td>${formatNumber(position.lever)}</td><td>${formatNumber(position.maxLever)}</td><td>${formatNumber(position.markPx)}</td><td>${formatUSD(position.notionalUsd)}</td></tr>`).join('')
        : '<tr><td colspan="8" class="muted">No positions.</td></tr>')
      + '</tbody>';
    return;
  }
  let html = '<thead><tr><th>Instrument</th><th>Size</th><th>Worst-cell P&amp;L</th><th>Marginal MMR</th><th>Delta</th><th>Mark</th><th>Notional USD</th></tr></thead><tbody>';
  if (!build.riskUnitData.length) html += '<tr><td colspan="7" class="muted">No positions.</td></tr>';
  for (const unit of build.riskUnitData) {
    html += `<tr class="unit-row"><th colspan="7" scope="rowgroup">${escapeHTML(unit.riskUnit)} · MMR ${formatUSD(unit.mmr)}</th></tr>`;
    for (const position of unit.portfolios || []) {
      const spot = position.instType === 'SPOT';
      html += `<tr class="${spot ? 'spot-row' : ''}" data-inst="${escapeHTML(position.instId)}"><th scope="row">${spot ? `${escapeHTML(position.instId)} spot in use` : escapeHTML(position.instId)}</th><td>${formatNumber(position.amt)}</td>`
        + `<td class="worst-pnl${Number(position.worstCellPnl) < 0 ? ' neg' : ''}" data-value="${escapeHTML(position.worstCellPnl)}">${formatUSD(position.worstCellPnl)}</td><td class="marginal" data-value="${escapeHTML(position.marginalMmr)}">${formatUSD(position.marginalMmr)}</td>`
        + `<td>${formatNumber(position.delta)}</td><td>${formatNumber(position.markPx)}</td><td>${formatUSD(position.notionalUsd)}</td></tr>`;
    }
    html += `<tr class="total-row"><th scope="row" colspan="2">Sum = worst MR1 cell</th><td>${formatUSD(unit.mr1FinalResult?.pnl)}</td><td colspan="4"></td></tr>`;
  }
  table.innerHTML = html + '</tbody>';
}
