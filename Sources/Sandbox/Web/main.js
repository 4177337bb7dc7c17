// The web Position Builder's entry point (a module: `<script type="module" src="/web/main.js">`, no build
// step). Every edit waits 300 ms, then the request goes to position-builder, -graph and -compare at once; the
// newest answer wins, and the last good results stay on screen, greyed, while the inputs have errors.
//
// Modules: format (numbers and text), dom, api (public and signed calls), catalog (instruments and the
// picker), portfolio-table (the input rows), request (rows → request, checked), field-errors, results
// (summary, comparison, unit cards, attribution), graph, account ("load my account"), storage (localStorage).

import { loadAccount } from './account.js';
import { postPublic } from './api.js';
import { catalog, loadCatalog } from './catalog.js';
import { find, setStatus } from './dom.js';
import { clearErrors, showGlobalError, showServerError } from './field-errors.js';
import { drawGraph } from './graph.js';
import { addBalanceRow, addPositionRow, balanceRows, onInputChange, positionRows, removeAllRows, updateSizeHint } from './portfolio-table.js';
import { collectRequest, marginModel } from './request.js';
import { renderResults } from './results.js';
import { restoreInputs, saveInputs } from './storage.js';

const DEBOUNCE_MS = 300;
const DAY_MS = 864e5;
let debounceTimer = 0;
/** Numbers each request, so that an answer to an older one is dropped. */
let requestNumber = 0;
/** The last answers that rendered: { build, graph, comparison, body }; null before the first. */
let lastResults = null;

/** Runs after every edit: saves, marks the page pending, and schedules a recomputation. */
function inputsChanged() {
  saveInputs();
  find('#mode').disabled = marginModel() === 'derive-pm2'; // Derive has no classic mode
  find('#positions-empty').hidden = positionRows.length > 0;
  find('#balances-empty').hidden = balanceRows.length > 0;
  find('#balances-table').hidden = balanceRows.length === 0;
  positionRows.forEach(updateSizeHint);
  document.body.dataset.state = 'pending';
  setStatus('Editing…', 'pending');
  clearTimeout(debounceTimer);
  debounceTimer = setTimeout(recompute, DEBOUNCE_MS);
}

/** Greys the results (and shows the banner) while they no longer match the inputs. */
function markResultsStale(stale) {
  const results = find('#results');
  results.classList.toggle('stale', stale && !!lastResults);
  find('#stale-banner').hidden = !(stale && lastResults);
  results.dataset.state = stale ? (lastResults ? 'stale' : 'empty') : 'fresh';
}

async function recompute() {
  clearTimeout(debounceTimer);
  clearErrors();
  const request = collectRequest();
  find('#request-json').textContent = JSON.stringify(request.body, null, 2);
  const thisRequest = ++requestNumber;
  if (request.errorCount) {
    markResultsStale(true);
    document.body.dataset.state = 'invalid';
    setStatus(`${request.errorCount} field${request.errorCount > 1 ? 's' : ''} to fix`, 'error');
    return;
  }
  setStatus('Calculating…', 'pending');
  find('#results').setAttribute('aria-busy', 'true');
  const answers = await Promise.allSettled([
    postPublic('position-builder', request.body), postPublic('position-builder-graph', request.body),
    postPublic('position-builder-compare', request.body),
  ]);
  if (thisRequest !== requestNumber) return; // a newer edit is on its way
  find('#results').setAttribute('aria-busy', 'false');
  const failed = answers.find((answer) => answer.status === 'rejected');
  if (failed) {
    const error = failed.reason;
    if (error.fromServer) showServerError(error.message, request.sent);
    else showGlobalError(`Cannot reach the server: ${error.message}`);
    markResultsStale(true);
    document.body.dataset.state = 'error';
    setStatus('Error: last good results shown', 'error');
    return;
  }
  lastResults = { build: answers[0].value, graph: answers[1].value, comparison: answers[2].value, body: request.body };
  try {
    renderResults(lastResults);
    drawGraph(lastResults.graph);
  } catch (error) {
    showGlobalError(`Display error: ${error.message}`);
  }
  markResultsStale(false);
  document.body.dataset.state = 'ready';
  setStatus('Up to date', 'ok');
}

function redrawGraph() {
  if (lastResults) drawGraph(lastResults.graph);
}

/** A hedged BTC portfolio: short perpetual, long put at least 20 days out near the money, BTC and USDT. */
function loadExample() {
  removeAllRows();
  const put = [...catalog.byId.values()]
    .filter((instrument) => instrument.kind === 'option' && instrument.coin === 'BTC' && instrument.optType === 'P'
      && Number(instrument.expTime) - catalog.marketTime > 20 * DAY_MS)
    .sort((a, b) => a.expTime - b.expTime || Math.abs(a.stk - catalog.indexUSD.BTC) - Math.abs(b.stk - catalog.indexUSD.BTC))[0];
  addPositionRow({ instId: 'BTC-USDT-SWAP', pos: '-100' });
  if (put) addPositionRow({ instId: put.instId, pos: '50' });
  addBalanceRow({ ccy: 'BTC', amt: '1' });
  addBalanceRow({ ccy: 'USDT', amt: '10000' });
  inputsChanged();
}

async function start() {
  try {
    await loadCatalog();
  } catch (error) {
    setStatus('Cannot load the instrument catalog', 'error');
    showGlobalError(`Cannot load the instrument catalog: ${error.message}. Is the server running?`);
    document.body.dataset.state = 'error';
    return;
  }
  onInputChange(inputsChanged);
  find('#add-position').addEventListener('click', () => {
    const row = addPositionRow();
    inputsChanged();
    row.picker.kind.focus();
  });
  find('#add-balance').addEventListener('click', () => {
    const row = addBalanceRow();
    inputsChanged();
    row.currency.focus();
  });
  find('#load-example').addEventListener('click', loadExample);
  find('#clear-all').addEventListener('click', () => {
    removeAllRows();
    inputsChanged();
  });
  for (const id of ['#mode-pm', '#mode-classic', '#greeks-type', '#model']) find(id).addEventListener('change', inputsChanged);
  find('#graph-range').addEventListener('change', () => {
    saveInputs();
    redrawGraph();
  });
  find('#account-form').addEventListener('submit', (event) => loadAccount(event, inputsChanged));
  let graphWidth = 0;
  new ResizeObserver(() => {
    const width = find('#graph').clientWidth;
    if (Math.abs(width - graphWidth) > 4) {
      graphWidth = width;
      redrawGraph();
    }
  }).observe(find('#graph'));
  restoreInputs();
  inputsChanged();
}

start();
