// Position Builder web page: plain JavaScript, no libraries, no network beyond this server.
'use strict';

const $ = (sel, root = document) => root.querySelector(sel);
const API = '/api/v5/public/';
const KINDS = { spot: 'SPOT', perpetual: 'SWAP', future: 'FUTURES', option: 'OPTION' };
// Spot is held as a balance: a spot row is sent as simAsset (the engine margins spot through balances).
const KIND_LABEL = { spot: 'Spot (balance)', perpetual: 'Perpetual', future: 'Future', option: 'Option' };
const QUOTE_LABEL = { USDT: 'USDT-margined', USDC: 'USDC-margined', USD: 'Coin-margined (USD)' };
const MR_INFO = [
  ['mr1', 'spot × vol shock'], ['mr2', 'theta decay'], ['mr3', 'vol term structure'], ['mr4', 'basis'],
  ['mr5', 'interest rate'], ['mr6', 'extreme move'], ['mr7', 'minimum charge'], ['mr8', 'borrowing (account)'],
  ['mr9', 'stablecoin depeg'],
];
const VOL_ROWS = [['volShockUp', 'Vol up', 'up'], ['volSame', 'Vol same', 'unchange'], ['volShockDown', 'Vol down', 'down']];
const STORE_KEY = 'pm-position-builder-v1';

// ---------- formatting ----------
const nf2 = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const nfG = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 6 });
const isNum = (s) => s !== '' && s !== null && s !== undefined && Number.isFinite(Number(s));
const usd = (s) => (isNum(s) ? nf2.format(Number(s)) : '—');
const gen = (s) => (isNum(s) ? nfG.format(Number(s)) : '—');
const pct = (ratio) => (isNum(ratio) ? nf2.format(Number(ratio) * 100) + ' %' : '—');
const move = (s) => (isNum(s) ? (Number(s) > 0 ? '+' : Number(s) < 0 ? '−' : '') + nfG.format(Math.abs(Number(s) * 100)) + ' %' : '—');
function compact(x) {
  const a = Math.abs(x);
  const s = a >= 1e6 ? (a / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M' : a >= 1e4 ? (a / 1e3).toFixed(0) + 'k' : a >= 1e3 ? (a / 1e3).toFixed(1) + 'k' : a.toFixed(a >= 100 ? 0 : 1);
  return (x < 0 ? '−' : '') + s;
}
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
// Plain decimals only (what the API accepts); returns null when the text is not a number.
function parseNum(text) {
  const t = String(text).trim();
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(t)) return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}
const numText = (t) => String(t).trim().replace(/^\+/, '');

// ---------- catalog ----------
const cat = { byId: new Map(), tree: { spot: {}, perpetual: {}, future: {}, option: {} }, index: {}, ccys: [], marketTs: 0 };

async function getJSON(url) {
  const res = await fetch(url);
  const body = await res.json();
  if (body.code !== '0') throw new Error(body.msg || 'request failed');
  return body.data;
}

async function loadCatalog() {
  const [spots, swaps, futures, options, indices] = await Promise.all([
    getJSON(API + 'instruments?instType=SPOT'), getJSON(API + 'instruments?instType=SWAP'), getJSON(API + 'instruments?instType=FUTURES'),
    getJSON(API + 'instruments?instType=OPTION'), getJSON('/api/v5/market/index-tickers?quoteCcy=USD'),
  ]);
  const put = (obj, keys, value) => {
    let node = obj;
    keys.slice(0, -1).forEach((k) => { node = node[k] ??= {}; });
    node[keys[keys.length - 1]] = value;
  };
  for (const [kind, list] of [['spot', spots], ['perpetual', swaps], ['future', futures], ['option', options]]) {
    for (const inst of list) {
      const [coin, quote] = kind === 'spot' ? [inst.baseCcy, inst.quoteCcy] : inst.instFamily.split('-');
      const exp = inst.instId.split('-')[2];
      inst.kind = kind; inst.coin = coin; inst.quote = quote; inst.exp = exp;
      cat.byId.set(inst.instId, inst);
      if (kind === 'spot' || kind === 'perpetual') put(cat.tree[kind], [coin, quote], inst);
      else if (kind === 'future') put(cat.tree.future, [coin, quote, exp], inst);
      else put(cat.tree.option, [coin, quote, exp, inst.stk, inst.optType], inst);
    }
  }
  const ccys = new Set(['USDT', 'USDC']);
  for (const row of indices) {
    const [base] = row.instId.split('-');
    cat.index[base] = Number(row.idxPx);
    ccys.add(base);
    cat.marketTs = Number(row.ts);
  }
  cat.ccys = [...ccys].sort();
  $('#ccy-list').innerHTML = cat.ccys.map((c) => `<option value="${esc(c)}">`).join('');
  const when = new Date(cat.marketTs).toISOString().replace('T', ' ').slice(0, 16);
  $('#market-info').textContent = `market ${when} UTC · BTC ${gen(cat.index.BTC)}`;
}

const expLabel = (inst) => {
  const d = new Date(Number(inst.expTime));
  const days = (Number(inst.expTime) - cat.marketTs) / 864e5;
  return `${d.toISOString().slice(0, 10)} (${days < 1 ? days.toFixed(1) : Math.round(days)}d)`;
};

// Options for each picker level given the choices above it.
function levels(sel) {
  const out = { kind: Object.keys(KINDS).map((k) => [k, KIND_LABEL[k]]) };
  const root = cat.tree[sel.kind] || {};
  out.coin = Object.keys(root).sort().map((c) => [c, c]);
  const byQuote = root[sel.coin] || {};
  out.quote = Object.keys(byQuote).sort().map((q) => [q, sel.kind === 'spot' ? `${sel.coin}-${q}` : QUOTE_LABEL[q] || q]);
  if (sel.kind === 'spot' || sel.kind === 'perpetual') return out;
  const byExp = byQuote[sel.quote] || {};
  const exps = Object.keys(byExp).sort();
  const firstInst = (node) => { while (node && !node.instId) node = Object.values(node)[0]; return node; };
  out.exp = exps.map((e) => [e, expLabel(firstInst(byExp[e]))]);
  if (sel.kind === 'future') return out;
  const byStrike = byExp[sel.exp] || {};
  out.strike = Object.keys(byStrike).sort((a, b) => a - b).map((s) => [s, nfG.format(Number(s))]);
  out.type = [['C', 'Call'], ['P', 'Put']].filter(([t]) => (byStrike[sel.strike] || {})[t]);
  return out;
}

function resolveInst(sel) {
  const t = cat.tree[sel.kind]?.[sel.coin]?.[sel.quote];
  if (!t) return null;
  if (sel.kind === 'spot' || sel.kind === 'perpetual') return t;
  if (sel.kind === 'future') return t[sel.exp] || null;
  return t[sel.exp]?.[sel.strike]?.[sel.type] || null;
}

// ---------- input rows ----------
let nextId = 1;
const posRows = [];
const balRows = [];

function cell(label, cls) {
  const td = document.createElement('td');
  td.dataset.label = label;
  if (cls) td.className = cls;
  return td;
}

function labelled(td, id, labelText, control) {
  const lab = document.createElement('label');
  lab.className = 'sr-only';
  lab.htmlFor = id;
  lab.textContent = labelText;
  control.id = id;
  td.append(lab, control);
  return control;
}

function textInput(cls, placeholder) {
  const input = document.createElement('input');
  input.className = cls;
  input.type = 'text';
  input.inputMode = 'decimal';
  input.autocomplete = 'off';
  input.spellcheck = false;
  input.placeholder = placeholder;
  return input;
}

function errSlot(td, field) {
  const slot = document.createElement('div');
  slot.className = 'err-slot';
  slot.dataset.for = field;
  td.append(slot);
  return slot;
}

function removeButton(label, onClick) {
  const td = cell('', 'c-remove');
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'remove-row';
  b.setAttribute('aria-label', label);
  b.title = label;
  b.textContent = '×';
  b.addEventListener('click', onClick);
  td.append(b);
  return td;
}

function addPositionRow(init = {}) {
  const id = nextId++;
  const tr = document.createElement('tr');
  tr.className = 'pos-row';
  tr.dataset.rowId = id;
  const row = { id, tr, sel: {}, pick: {} };

  const tdInst = cell('Instrument', 'c-inst');
  const picker = document.createElement('div');
  picker.className = 'picker';
  for (const [lvl, text] of [['kind', 'Kind'], ['coin', 'Coin'], ['quote', 'Margin'], ['exp', 'Expiry'], ['strike', 'Strike'], ['type', 'Call or put']]) {
    const wrap = document.createElement('span');
    wrap.className = `pick pick-${lvl}-wrap`;
    const s = document.createElement('select');
    s.className = `pick-${lvl}`;
    labelled(wrap, `p${id}-${lvl}`, `${text}, position ${id}`, s);
    s.addEventListener('change', () => { row.sel[lvl] = s.value; refreshPicker(row); changed(); });
    row.pick[lvl] = s;
    picker.append(wrap);
  }
  row.instEl = document.createElement('div');
  row.instEl.className = 'inst-id';
  tdInst.append(picker, row.instEl);
  row.instSlot = errSlot(tdInst, 'instId');

  const tdSize = cell('Size (contracts)', 'c-size');
  row.size = labelled(tdSize, `p${id}-size`, `Size in contracts, position ${id} (negative = short)`, textInput('pos-size', 'e.g. -100'));
  row.sizeSlot = errSlot(tdSize, 'pos');
  row.sizeHint = document.createElement('div');
  row.sizeHint.className = 'hint size-hint';
  tdSize.append(row.sizeHint);

  const tdPx = cell('Entry price', 'c-px');
  row.px = labelled(tdPx, `p${id}-px`, `Entry price, position ${id} (optional; mark when empty)`, textInput('pos-px', 'mark'));
  row.pxSlot = errSlot(tdPx, 'avgPx');

  const tdLev = cell('Leverage', 'c-lever');
  row.lever = labelled(tdLev, `p${id}-lever`, `Leverage, position ${id} (classic mode, optional)`, textInput('pos-lever', 'classic'));
  row.lever.title = 'Classic mode only; empty = the default leverage';
  row.leverSlot = errSlot(tdLev, 'lever');

  tr.append(tdInst, tdSize, tdPx, tdLev, removeButton(`Remove position ${id}`, () => {
    posRows.splice(posRows.indexOf(row), 1);
    tr.remove();
    changed();
  }));
  for (const input of [row.size, row.px, row.lever]) input.addEventListener('input', changed);

  const inst = init.instId && cat.byId.get(init.instId);
  if (inst) row.sel = { kind: inst.kind, coin: inst.coin, quote: inst.quote, exp: inst.exp, strike: inst.stk, type: inst.optType };
  else row.sel = { kind: init.kind || 'perpetual', coin: init.coin || 'BTC', quote: init.quote || 'USDT' };
  if (init.pos !== undefined) row.size.value = init.pos;
  if (init.avgPx) row.px.value = init.avgPx;
  if (init.lever) row.lever.value = init.lever;
  posRows.push(row);
  $('#positions-body').append(tr);
  refreshPicker(row);
  return row;
}

function refreshPicker(row) {
  const sel = row.sel;
  const prevStrike = Number(sel.strike);
  for (const lvl of ['kind', 'coin', 'quote', 'exp', 'strike', 'type']) {
    const opts = levels(sel)[lvl];
    const s = row.pick[lvl];
    s.parentElement.hidden = !opts;
    if (!opts) { delete sel[lvl]; continue; }
    if (!opts.some(([v]) => v === sel[lvl])) {
      let choice = opts[0]?.[0];
      if (lvl === 'coin' && opts.some(([v]) => v === 'BTC')) choice = 'BTC';
      if (lvl === 'quote' && opts.some(([v]) => v === 'USDT')) choice = 'USDT';
      if (lvl === 'strike' && opts.length) {
        const target = Number.isFinite(prevStrike) ? prevStrike : cat.index[sel.coin] || 0;
        choice = opts.reduce((best, [v]) => (Math.abs(v - target) < Math.abs(best - target) ? v : best), opts[0][0]);
      }
      sel[lvl] = choice;
    }
    s.innerHTML = opts.map(([v, t]) => `<option value="${esc(v)}">${esc(t)}</option>`).join('');
    s.value = sel[lvl] ?? '';
  }
  const inst = resolveInst(sel);
  row.inst = inst;
  row.instEl.textContent = inst ? inst.instId : 'no instrument';
  updateSizeHint(row);
}

function updateSizeHint(row) {
  const inst = row.inst;
  const n = parseNum(row.size.value);
  if (!inst) { row.sizeHint.textContent = ''; return; }
  if (inst.kind === 'spot') {
    row.sizeHint.textContent = `${inst.baseCcy} held as a balance (coins; negative = borrowed)`;
    return;
  }
  const per = Number(inst.ctVal) * Number(inst.ctMult || 1);
  row.sizeHint.textContent = n ? `= ${gen(n * per)} ${inst.ctValCcy}` : `1 contract = ${gen(per)} ${inst.ctValCcy}`;
}

function addBalanceRow(init = {}) {
  const id = nextId++;
  const tr = document.createElement('tr');
  tr.className = 'bal-row';
  tr.dataset.rowId = id;
  const row = { id, tr };
  const tdCcy = cell('Currency', 'c-ccy');
  row.ccy = labelled(tdCcy, `b${id}-ccy`, `Currency, balance ${id}`, textInput('bal-ccy', 'BTC'));
  row.ccy.inputMode = 'text';
  row.ccy.setAttribute('list', 'ccy-list');
  row.ccy.autocapitalize = 'characters';
  row.ccySlot = errSlot(tdCcy, 'ccy');
  const tdAmt = cell('Amount (− = borrowed)', 'c-amt');
  row.amt = labelled(tdAmt, `b${id}-amt`, `Amount, balance ${id}`, textInput('bal-amt', 'e.g. 1.5'));
  row.amtSlot = errSlot(tdAmt, 'amt');
  const tdSiu = cell('Spot in use (PM, optional)', 'c-siu');
  row.siu = labelled(tdSiu, `b${id}-siu`, `Spot in use, balance ${id} (optional, coins)`, textInput('bal-siu', 'auto'));
  row.siuSlot = errSlot(tdSiu, 'spotInUse');
  tr.append(tdCcy, tdAmt, tdSiu, removeButton(`Remove balance ${id}`, () => {
    balRows.splice(balRows.indexOf(row), 1);
    tr.remove();
    changed();
  }));
  for (const input of [row.ccy, row.amt, row.siu]) input.addEventListener('input', changed);
  row.ccy.addEventListener('blur', () => { row.ccy.value = row.ccy.value.trim().toUpperCase(); });
  if (init.ccy) row.ccy.value = init.ccy;
  if (init.amt !== undefined) row.amt.value = init.amt;
  if (init.siu) row.siu.value = init.siu;
  balRows.push(row);
  $('#balances-body').append(tr);
  return row;
}

// ---------- errors ----------
function clearErrors() {
  document.querySelectorAll('#inputs .field-error, #inputs .field-note').forEach((e) => e.remove());
  document.querySelectorAll('#inputs [aria-invalid]').forEach((e) => { e.removeAttribute('aria-invalid'); e.removeAttribute('aria-describedby'); });
  const g = $('#global-error');
  g.hidden = true;
  g.textContent = '';
}

function fieldError(slot, input, message, note = false) {
  const div = document.createElement('div');
  div.className = note ? 'field-note' : 'field-error';
  div.id = `${slot.closest('tr')?.dataset.rowId || 'x'}-${slot.dataset.for}-err`;
  div.textContent = message;
  slot.append(div);
  if (input && !note) {
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', div.id);
  }
}

function globalError(message) {
  const g = $('#global-error');
  g.textContent = message;
  g.hidden = false;
}

// ---------- the request ----------
function collect() {
  let errors = 0;
  const simPos = [], sentPos = [], simAsset = [], sentBal = [], spotInUse = [], sentSiu = [], spotRows = [];
  for (const row of posRows) {
    const text = row.size.value.trim();
    const bad = (slot, input, msg) => { fieldError(slot, input, msg); errors++; };
    const before = errors;
    if (!row.inst) bad(row.instSlot, row.pick.kind, 'Choose an instrument');
    if (text === '') {
      fieldError(row.sizeSlot, row.size, 'Enter a size to include this row', true);
      continue;
    }
    const n = parseNum(text);
    if (n === null) bad(row.sizeSlot, row.size, `Size "${text}" is not a number`);
    else if (n === 0) bad(row.sizeSlot, row.size, 'Size must not be zero (use a negative size for a short)');
    const px = row.px.value.trim();
    const pxN = px === '' ? undefined : parseNum(px);
    if (pxN === null) bad(row.pxSlot, row.px, `Entry price "${px}" is not a number`);
    else if (pxN !== undefined && pxN <= 0) bad(row.pxSlot, row.px, 'Entry price must be greater than 0');
    const lev = row.lever.value.trim();
    const levN = lev === '' ? undefined : parseNum(lev);
    if (levN === null) bad(row.leverSlot, row.lever, `Leverage "${lev}" is not a number`);
    else if (levN !== undefined && (levN < 1 || levN > 1000)) bad(row.leverSlot, row.lever, 'Leverage must be between 1 and 1000');
    if (errors !== before) continue;
    if (row.inst.kind === 'spot') { spotRows.push({ row, ccy: row.inst.baseCcy, amt: numText(text) }); continue; }
    const entry = { instId: row.inst.instId, pos: numText(text) };
    if (px !== '') entry.avgPx = numText(px);
    if (lev !== '') entry.lever = numText(lev);
    simPos.push(entry);
    sentPos.push(row);
  }
  const seen = new Set();
  for (const row of balRows) {
    const ccy = row.ccy.value.trim().toUpperCase();
    const amt = row.amt.value.trim();
    const siu = row.siu.value.trim();
    const before = errors;
    const bad = (slot, input, msg) => { fieldError(slot, input, msg); errors++; };
    if (ccy === '' && amt === '' && siu === '') { fieldError(row.ccySlot, row.ccy, 'Enter a currency and an amount', true); continue; }
    if (!/^[A-Z0-9]{1,12}$/.test(ccy)) bad(row.ccySlot, row.ccy, ccy ? `Currency "${ccy}" is not a currency code` : 'Enter a currency');
    else if (seen.has(ccy)) bad(row.ccySlot, row.ccy, `${ccy} is already in the table`);
    seen.add(ccy);
    if (amt === '') bad(row.amtSlot, row.amt, 'Enter an amount');
    else if (parseNum(amt) === null) bad(row.amtSlot, row.amt, `Amount "${amt}" is not a number`);
    const siuN = siu === '' ? undefined : parseNum(siu);
    if (siuN === null) bad(row.siuSlot, row.siu, `Spot in use "${siu}" is not a number`);
    else if (siuN !== undefined && siuN < 0) bad(row.siuSlot, row.siu, 'Spot in use must be 0 or more');
    if (errors !== before) continue;
    simAsset.push({ ccy, amt: numText(amt) });
    sentBal.push(row);
    if (siu !== '') { spotInUse.push({ ccy, amt: numText(siu) }); sentSiu.push(row); }
  }
  // Spot rows become balances; the server's messages about them land on the row's size and instrument.
  for (const { row, ccy, amt } of spotRows) {
    if (seen.has(ccy)) {
      fieldError(row.sizeSlot, row.size, `${ccy} is also in the balances or another spot row: enter the total once`);
      errors++;
      continue;
    }
    seen.add(ccy);
    simAsset.push({ ccy, amt });
    sentBal.push({ amtSlot: row.sizeSlot, amt: row.size, ccySlot: row.instSlot, ccy: row.pick.kind });
  }
  const body = { acctLv: mode(), greeksType: $('#greeks-type').value, simPos, simAsset };
  if (spotInUse.length) body.spotInUse = spotInUse;
  // Another margin model is chosen by its parameter set; Derive has no classic mode.
  if (model() === 'derive-pm2') { body.paramsId = 'derive-pm2'; delete body.acctLv; }
  return { body, errors, sentPos, sentBal, sentSiu };
}

const mode = () => ($('#mode-classic').checked ? '3' : '4');
const model = () => $('#model').value;

// Puts a server message next to the field its path names (`simPos[1].pos`, `simAsset[0].ccy`, …).
function showServerError(msg, sent) {
  const m = /\b(simPos|simAsset|spotInUse)(?:\[(\d+)\])?(?:\.(\w+))?/.exec(msg);
  if (m) {
    const [, list, index, field] = m;
    const rows = { simPos: sent.sentPos, simAsset: sent.sentBal, spotInUse: sent.sentSiu }[list];
    const row = index !== undefined ? rows[Number(index)] : null;
    if (row) {
      const target = list === 'simPos'
        ? { pos: [row.sizeSlot, row.size], avgPx: [row.pxSlot, row.px], lever: [row.leverSlot, row.lever] }[field] || [row.instSlot, row.pick.kind]
        : list === 'spotInUse' ? [row.siuSlot, row.siu]
          : field === 'amt' ? [row.amtSlot, row.amt] : [row.ccySlot, row.ccy];
      fieldError(target[0], target[1], msg);
      return;
    }
  }
  // "Instrument ID does not exist: X" names no path: find the row by instrument.
  const inst = /Instrument ID does not exist: (\S+)/.exec(msg);
  const row = inst && sent.sentPos.find((r) => r.inst?.instId === inst[1]);
  if (row) fieldError(row.instSlot, row.pick.kind, msg);
  else globalError(msg);
}

// ---------- computing ----------
let timer = 0;
let seq = 0;
let last = null; // last good { build, graph, compare, body }

function changed() {
  save();
  $('#mode').disabled = model() === 'derive-pm2'; // Derive has no classic mode
  $('#positions-empty').hidden = posRows.length > 0;
  $('#balances-empty').hidden = balRows.length > 0;
  $('#balances-table').hidden = balRows.length === 0;
  posRows.forEach(updateSizeHint);
  document.body.dataset.state = 'pending';
  setStatus('Editing…', 'pending');
  clearTimeout(timer);
  timer = setTimeout(recompute, 300);
}

function setStatus(text, kind) {
  const s = $('#status');
  s.textContent = text;
  s.dataset.kind = kind;
}

function markStale(stale) {
  $('#results').classList.toggle('stale', stale && !!last);
  $('#stale-banner').hidden = !(stale && last);
  $('#results').dataset.state = stale ? (last ? 'stale' : 'empty') : 'fresh';
}

async function post(endpoint, body) {
  const res = await fetch(API + endpoint, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  let json;
  try { json = await res.json(); } catch { throw new Error(`HTTP ${res.status}: the server did not answer JSON`); }
  if (json.code !== '0') { const e = new Error(json.msg || `error ${json.code}`); e.server = true; throw e; }
  return json.data[0];
}

async function recompute() {
  clearTimeout(timer);
  clearErrors();
  const sent = collect();
  $('#request-json').textContent = JSON.stringify(sent.body, null, 2);
  const my = ++seq;
  if (sent.errors) {
    markStale(true);
    document.body.dataset.state = 'invalid';
    setStatus(`${sent.errors} field${sent.errors > 1 ? 's' : ''} to fix`, 'error');
    return;
  }
  setStatus('Calculating…', 'pending');
  $('#results').setAttribute('aria-busy', 'true');
  const results = await Promise.allSettled([post('position-builder', sent.body), post('position-builder-graph', sent.body), post('position-builder-compare', sent.body)]);
  if (my !== seq) return; // a newer edit is on its way
  $('#results').setAttribute('aria-busy', 'false');
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    const err = failed.reason;
    if (err.server) showServerError(err.message, sent);
    else globalError(`Cannot reach the server: ${err.message}`);
    markStale(true);
    document.body.dataset.state = 'error';
    setStatus('Error: last good results shown', 'error');
    return;
  }
  last = { build: results[0].value, graph: results[1].value, compare: results[2].value, body: sent.body };
  try {
    render(last);
  } catch (e) {
    globalError(`Display error: ${e.message}`);
  }
  markStale(false);
  document.body.dataset.state = 'ready';
  setStatus('Up to date', 'ok');
}

// ---------- rendering ----------
function setFig(id, text, value) {
  const dd = $('#' + id);
  dd.textContent = text;
  if (value !== undefined) dd.dataset.value = value;
}

function render({ build, graph, compare, body }) {
  const derive = build.model === 'derive-pm2';
  const pm = derive || body.acctLv === '4';
  setFig('equity', usd(build.eqUsd));
  setFig('adj-eq', usd(build.adjEq));
  setFig('total-mmr', usd(build.totalMmr), build.totalMmr);
  setFig('total-imr', usd(build.totalImr), build.totalImr);
  setFig('margin-ratio', build.marginRatio === '' ? '∞ (no MMR)' : pct(build.marginRatio), build.marginRatio);
  setFig('acct-lever', isNum(build.acctLever) ? nf2.format(Number(build.acctLever)) + '×' : '—', build.acctLever);
  setFig('avail-eq', usd(Number(build.adjEq) - Number(build.totalImr)));
  setFig('upl', usd(build.upl));
  const ratio = Number(build.marginRatio);
  const mr = $('#margin-ratio').parentElement;
  mr.dataset.level = build.marginRatio === '' ? 'safe' : ratio <= 1 ? 'liquidation' : ratio <= 3 ? 'warning' : 'safe';
  $('#mini-summary').innerHTML = `MMR <b>${usd(build.totalMmr)}</b> · ratio <b>${build.marginRatio === '' ? '∞' : pct(build.marginRatio)}</b>`;
  $('#summary-mode').textContent = derive ? 'Derive PM2 (derive-pm2)' : pm ? 'Portfolio margin (acctLv 4)' : 'Classic (acctLv 3)';
  $('#summary-mode').dataset.mode = derive ? 'derive' : pm ? 'pm' : 'classic';
  $('#footnote').textContent = derive
    ? `Model ${build.model}, parameters ${build.paramsId}, market ${build.marketTs}. USD figures; margin ratio = equity / MMR (Derive's MM surplus ≥ 0 exactly when it is ≥ 100 %). ${(build.notes || []).join(' ')}`
    : `Model ${build.model || 'okx-pm'}, parameters ${build.paramsId}, market ${build.marketTs}. USD figures; margin ratio = adjusted equity / MMR, liquidation at 100 %.`;
  if (compare.models) renderModels(compare); else renderCompare(compare, body.acctLv);
  if (derive) { renderDeriveUnits(build); renderDeriveAttribution(build); } else { renderUnits(build, pm); renderAttribution(build, pm); }
  drawGraph();
  // Mark prices as entry-price placeholders.
  const marks = new Map();
  for (const u of build.riskUnitData) for (const p of u.portfolios || []) marks.set(p.instId, p.markPx);
  for (const p of build.positions || []) marks.set(p.instId, p.markPx);
  for (const row of posRows) {
    const m = row.inst && marks.get(row.inst.instId);
    row.px.placeholder = m ? `mark ${gen(m)}` : 'mark';
  }
}

// Margin models side by side (the compare endpoint when another model is chosen).
function renderModels(c) {
  $('#compare-h').textContent = 'Margin models side by side';
  const cols = c.models || [];
  const rows = [['Total MMR', 'totalMmr', usd], ['Total IMR', 'totalImr', usd], ['Margin ratio', 'marginRatio', pct], ['Available equity', 'availEq', usd], ['Equity', 'eqUsd', usd]];
  let html = `<thead><tr><th></th>${cols.map((m) => `<th class="${m.model === model() ? 'current' : ''}" data-model="${esc(m.model)}">${esc(m.model)}</th>`).join('')}</tr></thead><tbody>`;
  for (const [label, key, f] of rows) {
    html += `<tr><th scope="row">${label}</th>${cols.map((m) => `<td data-model="${esc(m.model)}" data-key="${key}" data-value="${esc(m[key])}">${f(m[key])}</td>`).join('')}</tr>`;
  }
  const names = [...new Set(cols.flatMap((m) => (m.riskUnits || []).map((u) => u.riskUnit)))];
  for (const name of names) {
    html += `<tr class="sub"><th scope="row">${esc(name)} MMR</th>${cols.map((m) => {
      const u = (m.riskUnits || []).find((x) => x.riskUnit === name);
      return `<td title="${esc(u ? (u.drivers || []).map((d) => `${d.name}: ${usd(d.usd)}`).join('\n') : '')}">${u ? usd(u.mmr) : '—'}</td>`;
    }).join('')}</tr>`;
  }
  html += `<tr class="sub"><th scope="row">Sets the MMR</th>${cols.map((m) => `<td class="small">${(m.riskUnits || []).filter((u) => u.dominant).map((u) => `${esc(u.riskUnit)}: ${esc(u.dominant)}`).join('<br>') || '—'}</td>`).join('')}</tr>`;
  $('#compare').innerHTML = html + '</tbody>';
}

function renderCompare(c, acctLv) {
  $('#compare-h').textContent = 'Portfolio margin vs classic';
  const rows = [
    ['Total MMR', 'totalMmr', 'mmr', usd], ['Total IMR', 'totalImr', 'imr', usd], ['Margin ratio', 'mgnRatio', 'ratio', pct],
    ['Available equity', 'availEq', 'avail', usd], ['Adjusted equity', 'adjEq', 'adjeq', usd],
  ];
  const diff = (key) => (c.difference[key] !== undefined ? c.difference[key]
    : isNum(c.classic[key]) && isNum(c.portfolioMargin[key]) ? String(Number(c.classic[key]) - Number(c.portfolioMargin[key])) : '');
  const signed = (s, f) => (isNum(s) ? (Number(s) > 0 ? '+' : '') + f(s) : '—');
  let html = `<thead><tr><th></th><th class="${acctLv === '4' ? 'current' : ''}"><span class="long">Portfolio margin</span><abbr class="short" title="Portfolio margin">PM</abbr></th><th class="${acctLv === '3' ? 'current' : ''}">Classic</th><th><span class="long">Classic − PM</span><span class="short">Δ</span></th></tr></thead><tbody>`;
  for (const [label, key, id, f] of rows) {
    const d = diff(key);
    const cls = id === 'mmr' || id === 'imr' ? (Number(d) > 0 ? 'worse' : Number(d) < 0 ? 'better' : '') : '';
    html += `<tr><th scope="row">${label}</th><td id="cmp-pm-${id}" data-value="${esc(c.portfolioMargin[key])}">${f(c.portfolioMargin[key])}</td>`
      + `<td id="cmp-classic-${id}" data-value="${esc(c.classic[key])}">${f(c.classic[key])}</td>`
      + `<td id="cmp-diff-${id}" class="${cls}" data-value="${esc(d)}">${signed(d, f)}</td></tr>`;
  }
  const units = new Map();
  for (const u of c.portfolioMargin.riskUnits) units.set(u.riskUnit, { pm: u.mmr });
  for (const u of c.classic.riskUnits) (units.get(u.riskUnit) || units.set(u.riskUnit, {}).get(u.riskUnit)).cl = u.mmr;
  for (const [unit, v] of units) {
    const d = isNum(v.pm) && isNum(v.cl) ? Number(v.cl) - Number(v.pm) : '';
    html += `<tr class="sub"><th scope="row">${esc(unit)} MMR</th><td>${usd(v.pm)}</td><td>${usd(v.cl)}</td><td class="${d > 0 ? 'worse' : d < 0 ? 'better' : ''}">${signed(d, usd)}</td></tr>`;
  }
  $('#compare').innerHTML = html + '</tbody>';
}

function renderUnits(b, pm) {
  const box = $('#units');
  if (!b.riskUnitData.length) {
    box.innerHTML = '<div class="panel muted">No risk units: add derivative positions to see MR1–MR9 and the MR1 grid.</div>';
    return;
  }
  box.innerHTML = b.riskUnitData.map((u) => (pm ? pmUnit(u) : classicUnit(u))).join('');
}

// Derive PM2: one card per portfolio with its worst loss, contingencies and scenario P&L.
function renderDeriveUnits(b) {
  const box = $('#units');
  if (!b.riskUnitData.length) { box.innerHTML = '<div class="panel muted">Nothing to margin.</div>'; return; }
  box.innerHTML = b.riskUnitData.map((u) => {
    const c = u.contingencies || {};
    const drivers = (u.drivers || []).map((d) => `<li>${esc(d.name)}: <b>${usd(d.usd)}</b></li>`).join('') || '<li class="muted">nothing required</li>';
    const scen = (u.scenarios || []).filter(() => (u.expiries || []).length || Number(u.perpValue) !== 0 || Number(u.collateralValue) !== 0);
    const rows = scen.map((x) => `<tr data-pnl="${esc(x.pnl)}"><th scope="row">${x.volShock === 'linear' || x.volShock === 'abs' ? esc(x.volShock) + ' skew' : `spot ×${gen(x.spotShock)}, vol ${esc(x.volShock)}${x.dampening === '1' ? '' : ` (damp ${gen(x.dampening)})`}`}</th><td class="${Number(x.pnl) < 0 ? 'neg' : ''}">${usd(x.pnl)}</td></tr>`).join('');
    return `<article class="panel unit-card derive" data-unit="${esc(u.riskUnit)}">
  <header class="unit-head"><h2>${esc(u.riskUnit)} <small class="muted">Derive portfolio</small></h2>
    <span class="dominant-badge" title="what sets this portfolio's MMR">${esc(u.dominant || 'nothing required')}</span></header>
  <dl class="figs small-figs">
    <div class="key"><dt>MMR</dt><dd class="unit-mmr" data-value="${esc(u.mmr)}">${usd(u.mmr)}</dd></div>
    <div><dt>IMR</dt><dd class="unit-imr" data-value="${esc(u.imr)}">${usd(u.imr)}</dd></div>
    <div><dt>MtM + cash</dt><dd>${usd(Number(u.mtm) + Number(u.cash))}</dd></div>
    <div><dt>Worst loss</dt><dd>${usd(u.worstLoss)} <small class="muted">${esc(u.worstScenario || '')}</small></dd></div>
  </dl>
  <ul class="drivers small">${drivers}</ul>
  <p class="small muted">Contingencies (USD): perp ${usd(c.perpMm)} + ${usd(c.perpIm)} IM · naked shorts ${usd(c.optionMm)} + ${usd(c.optionIm)} IM · collateral ${usd(c.collateralMm)} + ${usd(c.collateralIm)} IM · oracle ${usd(c.oracleIm)} IM · basis ${usd(u.basisContingency)}</p>
  <p class="formula small muted">MMR = −${gen(u.mmFactor)} × min(basis contingency, worst scenario P&amp;L) + MM contingencies; IMR uses ×${gen(u.imFactor)} and adds the IM contingencies.</p>
  ${rows ? `<details><summary>Scenario P&amp;L (USD)</summary><table class="num-table derive-scenarios">${rows}</table></details>` : ''}
</article>`;
  }).join('');
}

function renderDeriveAttribution(b) {
  const rows = b.positions || [];
  $('#attribution').innerHTML = '<thead><tr><th>Instrument</th><th>Contracts</th><th>Derive asset</th><th>Coins</th><th>Portfolio</th></tr></thead><tbody>'
    + (rows.length ? rows.map((p) => `<tr data-inst="${esc(p.instId)}"><th scope="row">${esc(p.instId)}</th><td>${gen(p.pos)}</td><td>${esc(p.deriveAsset)}</td><td>${gen(p.coins)}</td><td>${esc(p.riskUnit)}</td></tr>`).join('')
      : '<tr><td colspan="5" class="muted">No positions.</td></tr>') + '</tbody>';
}

function liqText(s, dir) {
  return isNum(s) ? `<b>${move(s)}</b>` : `<span class="muted">none ${dir === 'down' ? 'down to −99 %' : 'up to +99 %'}</span>`;
}

function pmUnit(u) {
  const values = MR_INFO.map(([k]) => Number(u[k]) || 0);
  const max = Math.max(...values, 1e-12);
  const dom = String(u.dominant || '').toLowerCase();
  const bars = MR_INFO.map(([k, desc], i) => `<div class="mr-bar${k === dom ? ' dominant' : ''}${k === 'mr8' ? ' aside' : ''}" data-mr="${k.toUpperCase()}" role="listitem">`
    + `<span class="mr-name">${k.toUpperCase()}</span><span class="mr-desc">${desc}</span>`
    + `<span class="bar" aria-hidden="true"><span style="width:${(100 * values[i] / max).toFixed(2)}%"></span></span>`
    + `<span class="mr-val" data-value="${esc(u[k])}">${usd(u[k])}</span></div>`).join('');
  return `<article class="panel unit-card" data-unit="${esc(u.riskUnit)}">
  <header class="unit-head"><h2>${esc(u.riskUnit)} <small class="muted">${esc(u.tier || '')}</small></h2>
    <span class="dominant-badge" title="the component that sets this unit's MMR">${esc(u.dominant)} sets the MMR</span></header>
  <dl class="figs small-figs">
    <div class="key"><dt>MMR</dt><dd class="unit-mmr" data-value="${esc(u.mmr)}">${usd(u.mmr)}</dd></div>
    <div><dt>IMR</dt><dd class="unit-imr" data-value="${esc(u.imr)}">${usd(u.imr)}</dd></div>
    <div><dt>UPL</dt><dd>${usd(u.upl)}</dd></div>
    <div class="liq"><dt>Liquidation at spot move</dt><dd class="liq-moves" data-down="${esc(u.liqMoves?.down ?? '')}" data-up="${esc(u.liqMoves?.up ?? '')}">${liqText(u.liqMoves?.down, 'down')} / ${liqText(u.liqMoves?.up, 'up')}</dd></div>
  </dl>
  <div class="mr-bars" role="list" aria-label="${esc(u.riskUnit)} MR1 to MR9">${bars}</div>
  <p class="formula small muted">MMR = max(max(MR1, MR2, MR6) + MR3 + MR4 + MR5 + MR9, MR7) · MR8 is the account's borrowing MMR, counted once.</p>
  <h3>MR1 grid: P&amp;L (USD) by spot move and volatility</h3>
  ${heatmap(u)}
  <p class="greeks small muted">Δ ${gen(u.delta)} · Γ ${gen(u.gamma)} · Vega ${gen(u.vega)} · Θ ${gen(u.theta)} · MR6 worst ${usd(u.mr6FinalResult?.pnl)} at ${move(u.mr6FinalResult?.spotShock)}</p>
</article>`;
}

function heatmap(u) {
  const sc = u.mr1Scenarios || {};
  // Object keys like "0" would be reordered by JavaScript: sort the moves numerically.
  const moves = [...new Set(VOL_ROWS.flatMap(([k]) => Object.keys(sc[k] || {})))].sort((a, b) => a - b);
  const cells = [];
  for (const [key, , okx] of VOL_ROWS) for (const m of moves) cells.push({ key, okx, m, pnl: Number(sc[key]?.[m]) });
  if (!cells.length) return '<p class="muted">No MR1 grid.</p>';
  const fin = u.mr1FinalResult || {};
  let worst = cells.find((c) => c.okx === fin.volShock && Number(c.m) === Number(fin.spotShock));
  if (!worst) worst = cells.reduce((a, c) => (c.pnl < a.pnl ? c : a), cells[0]);
  const maxAbs = Math.max(...cells.map((c) => Math.abs(c.pnl)), 1e-9);
  const color = (p) => {
    const t = Math.min(1, Math.abs(p) / maxAbs);
    if (Math.abs(p) < 1e-9) return 'rgb(246,247,249)';
    const a = (0.1 + 0.8 * Math.sqrt(t)).toFixed(3);
    return p < 0 ? `rgba(220,38,38,${a})` : `rgba(22,163,74,${a})`;
  };
  let html = `<div class="heat-wrap"><table class="heatmap" data-unit="${esc(u.riskUnit)}"><thead><tr><th scope="col"><span class="sr-only">Volatility</span></th>`;
  html += moves.map((m) => `<th scope="col">${move(m)}</th>`).join('') + '</tr></thead><tbody>';
  for (const [key, label] of VOL_ROWS) {
    html += `<tr><th scope="row">${label}</th>`;
    for (const c of cells.filter((x) => x.key === key)) {
      const isWorst = c === worst;
      const dark = Math.abs(c.pnl) / maxAbs > 0.55;
      html += `<td class="heat-cell${isWorst ? ' worst' : ''}${dark ? ' dark' : ''}" style="background:${color(c.pnl)}" data-spot="${esc(c.m)}" data-vol="${key}" data-pnl="${esc(sc[key][c.m])}" title="${label}, spot ${move(c.m)}: ${usd(c.pnl)} USD${isWorst ? ' (worst: sets MR1)' : ''}">${compact(c.pnl)}${isWorst ? '<span class="worst-tag">worst</span>' : ''}</td>`;
    }
    html += '</tr>';
  }
  return html + `</tbody></table></div><p class="small worst-note">Worst cell ${usd(worst.pnl)} USD (spot ${move(worst.m)}, ${VOL_ROWS.find((v) => v[0] === worst.key)[1].toLowerCase()}) → MR1 ${usd(u.mr1)}</p>`;
}

function classicUnit(u) {
  return `<article class="panel unit-card classic" data-unit="${esc(u.riskUnit)}">
  <header class="unit-head"><h2>${esc(u.riskUnit)}</h2><span class="muted small">classic: per-position requirements</span></header>
  <dl class="figs small-figs">
    <div class="key"><dt>MMR</dt><dd class="unit-mmr" data-value="${esc(u.mmr)}">${usd(u.mmr)}</dd></div>
    <div><dt>IMR</dt><dd class="unit-imr" data-value="${esc(u.imr)}">${usd(u.imr)}</dd></div>
    <div><dt>UPL</dt><dd>${usd(u.upl)}</dd></div>
  </dl>
  <p class="small muted">MR1–MR9 and the MR1 grid exist in portfolio margin only; switch the mode to see them.</p>
</article>`;
}

function renderAttribution(b, pm) {
  const t = $('#attribution');
  if (!pm) {
    const rows = b.positions || [];
    t.innerHTML = '<thead><tr><th>Instrument</th><th>Size</th><th>MMR</th><th>IMR</th><th>Lever</th><th>Max lever</th><th>Mark</th><th>Notional USD</th></tr></thead><tbody>'
      + (rows.length ? rows.map((p) => `<tr data-inst="${esc(p.instId)}"><th scope="row">${esc(p.instId)}</th><td>${gen(p.pos)}</td><td class="marginal" data-value="${esc(p.mmr)}">${usd(p.mmr)}</td><td>${usd(p.imr)}</td><td>${gen(p.lever)}</td><td>${gen(p.maxLever)}</td><td>${gen(p.markPx)}</td><td>${usd(p.notionalUsd)}</td></tr>`).join('')
        : '<tr><td colspan="8" class="muted">No positions.</td></tr>') + '</tbody>';
    return;
  }
  let html = '<thead><tr><th>Instrument</th><th>Size</th><th>Worst-cell P&amp;L</th><th>Marginal MMR</th><th>Delta</th><th>Mark</th><th>Notional USD</th></tr></thead><tbody>';
  if (!b.riskUnitData.length) html += '<tr><td colspan="7" class="muted">No positions.</td></tr>';
  for (const u of b.riskUnitData) {
    html += `<tr class="unit-row"><th colspan="7" scope="rowgroup">${esc(u.riskUnit)} · MMR ${usd(u.mmr)}</th></tr>`;
    for (const p of u.portfolios || []) {
      const spot = p.instType === 'SPOT';
      html += `<tr class="${spot ? 'spot-row' : ''}" data-inst="${esc(p.instId)}"><th scope="row">${spot ? `${esc(p.instId)} spot in use` : esc(p.instId)}</th><td>${gen(p.amt)}</td>`
        + `<td class="worst-pnl${Number(p.worstCellPnl) < 0 ? ' neg' : ''}" data-value="${esc(p.worstCellPnl)}">${usd(p.worstCellPnl)}</td><td class="marginal" data-value="${esc(p.marginalMmr)}">${usd(p.marginalMmr)}</td>`
        + `<td>${gen(p.delta)}</td><td>${gen(p.markPx)}</td><td>${usd(p.notionalUsd)}</td></tr>`;
    }
    html += `<tr class="total-row"><th scope="row" colspan="2">Sum = worst MR1 cell</th><td>${usd(u.mr1FinalResult?.pnl)}</td><td colspan="4"></td></tr>`;
  }
  t.innerHTML = html + '</tbody>';
}

// ---------- graph ----------
function drawGraph() {
  const box = $('#graph');
  if (!last) return;
  const range = Number($('#graph-range').value);
  const pts = last.graph.mmrData.map((p) => ({ x: Number(p.shockFactor), mmr: Number(p.mmr), r: p.mmrRatio === '' ? null : Number(p.mmrRatio) }))
    .filter((p) => p.x >= -range - 1e-9 && p.x <= range + 1e-9);
  if (!pts.length) { box.innerHTML = '<p class="muted">No graph data.</p>'; return; }
  if (pts.every((p) => p.mmr === 0)) { box.innerHTML = '<p class="muted">No margin requirement anywhere in this range: nothing to plot.</p>'; return; }
  const W = Math.max(280, box.clientWidth || 600), H = W < 480 ? 230 : 280;
  const m = { l: 58, r: 52, t: 26, b: 30 };
  const iw = W - m.l - m.r, ih = H - m.t - m.b;
  const x0 = pts[0].x, x1 = pts[pts.length - 1].x;
  const X = (x) => m.l + ((x - x0) / (x1 - x0 || 1)) * iw;
  const mmrMax = Math.max(...pts.map((p) => p.mmr), 1) * 1.08;
  const Y = (v) => m.t + ih - (v / mmrMax) * ih;
  const rs = pts.filter((p) => p.r !== null && p.r > 0).map((p) => p.r);
  const lo = Math.log10(Math.max(1e-3, Math.min(0.5, ...rs.map((r) => r / 1.5))));
  const hi = Math.log10(Math.min(1e7, Math.max(2, ...rs.map((r) => r * 1.5))));
  const YR = (r) => m.t + ih - ((Math.log10(Math.min(1e7, Math.max(10 ** lo, r))) - lo) / (hi - lo)) * ih;
  const path = (f) => {
    let d = '', pen = false;
    for (const p of pts) {
      const y = f(p);
      if (y === null) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${X(p.x).toFixed(1)},${y.toFixed(1)}`;
      pen = true;
    }
    return d;
  };
  // Liquidation zones: where the ratio is at or below 100 %.
  let zones = '';
  for (let i = 0; i < pts.length; i++) {
    if (pts[i].r === null || pts[i].r > 1) continue;
    let j = i;
    while (j + 1 < pts.length && pts[j + 1].r !== null && pts[j + 1].r <= 1) j++;
    const a = X(pts[i].x), bb = X(pts[j].x);
    zones += `<rect class="liq-zone" x="${a.toFixed(1)}" y="${m.t}" width="${Math.max(2, bb - a).toFixed(1)}" height="${ih}"/>`;
    i = j;
  }
  const xt = [], maxTicks = Math.max(3, Math.floor(iw / 48));
  const step = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5].find((s) => (x1 - x0) / s <= maxTicks) || 0.5;
  for (let v = Math.ceil(x0 / step) * step; v <= x1 + 1e-9; v += step) xt.push(Math.round(v * 1000) / 1000);
  const yt = [0, 0.25, 0.5, 0.75, 1].map((f) => f * mmrMax / 1.08);
  const rt = [];
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) rt.push(10 ** e);
  const oneY = YR(1);
  let svg = `<svg id="graph-svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="Account MMR and margin ratio against a spot move of every index from ${move(x0)} to ${move(x1)}">`;
  svg += `<g class="legend"><line x1="${m.l}" y1="12" x2="${m.l + 18}" y2="12" class="l-mmr"/><text x="${m.l + 22}" y="16">MMR (USD, left)</text>`
    + `<line x1="${m.l + 140}" y1="12" x2="${m.l + 158}" y2="12" class="l-ratio"/><text x="${m.l + 162}" y="16">margin ratio (log, right)</text></g>`;
  svg += zones;
  svg += yt.map((v) => `<line class="grid" x1="${m.l}" x2="${m.l + iw}" y1="${Y(v)}" y2="${Y(v)}"/><text class="tick" x="${m.l - 6}" y="${Y(v) + 4}" text-anchor="end">${compact(v)}</text>`).join('');
  svg += rt.map((r) => `<text class="tick r" x="${m.l + iw + 6}" y="${YR(r) + 4}">${r >= 1 ? compact(r * 100) : r * 100}%</text>`).join('');
  svg += xt.map((v) => `<text class="tick" x="${X(v)}" y="${H - 10}" text-anchor="middle">${Math.round(v * 100)}%</text>`).join('');
  if (x0 <= 0 && x1 >= 0) svg += `<line class="now" x1="${X(0)}" x2="${X(0)}" y1="${m.t}" y2="${m.t + ih}"/>`;
  svg += `<line id="liq-line" class="liq-line" x1="${m.l}" x2="${m.l + iw}" y1="${oneY}" y2="${oneY}"/><text class="liq-label" x="${m.l + iw - 4}" y="${oneY - 5}" text-anchor="end">100 % = liquidation</text>`;
  svg += `<path class="l-mmr" d="${path((p) => Y(p.mmr))}"/><path class="l-ratio" d="${path((p) => (p.r === null ? null : YR(p.r)))}"/>`;
  svg += `<rect class="frame" x="${m.l}" y="${m.t}" width="${iw}" height="${ih}"/><g id="graph-hover" display="none"><line class="cross" y1="${m.t}" y2="${m.t + ih}"/><rect class="tip-bg" rx="4"/><text class="tip"></text></g></svg>`;
  box.innerHTML = svg;
  const el = $('#graph-svg'), hover = $('#graph-hover');
  el.addEventListener('pointermove', (ev) => {
    const rect = el.getBoundingClientRect();
    const px = ((ev.clientX - rect.left) / rect.width) * W;
    const p = pts.reduce((a, q) => (Math.abs(X(q.x) - px) < Math.abs(X(a.x) - px) ? q : a), pts[0]);
    hover.setAttribute('display', 'inline');
    const cx = X(p.x);
    hover.querySelector('.cross').setAttribute('x1', cx);
    hover.querySelector('.cross').setAttribute('x2', cx);
    const text = `${move(p.x)}: MMR ${usd(p.mmr)} · ratio ${p.r === null ? '∞' : pct(p.r)}`;
    const tip = hover.querySelector('.tip');
    tip.textContent = text;
    const tw = text.length * 6.3 + 10;
    const tx = Math.min(Math.max(m.l, cx - tw / 2), m.l + iw - tw);
    tip.setAttribute('x', tx + 5);
    tip.setAttribute('y', m.t + 15);
    const bg = hover.querySelector('.tip-bg');
    bg.setAttribute('x', tx); bg.setAttribute('y', m.t + 2); bg.setAttribute('width', tw); bg.setAttribute('height', 18);
  });
  el.addEventListener('pointerleave', () => hover.setAttribute('display', 'none'));
}

// ---------- load my account (signed private GETs) ----------
async function signedGet(path, key, secret, passphrase) {
  if (!window.crypto?.subtle) throw new Error('WebCrypto is unavailable here: open the page via http://localhost or https');
  const enc = new TextEncoder();
  const ts = new Date().toISOString();
  const k = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', k, enc.encode(ts + 'GET' + path)));
  const sign = btoa(String.fromCharCode(...sig));
  const res = await fetch(path, { headers: { 'OK-ACCESS-KEY': key, 'OK-ACCESS-SIGN': sign, 'OK-ACCESS-TIMESTAMP': ts, 'OK-ACCESS-PASSPHRASE': passphrase } });
  const body = await res.json();
  if (body.code !== '0') throw new Error(`${path}: ${body.msg} (code ${body.code})`);
  return body.data;
}

async function loadAccount(ev) {
  ev.preventDefault();
  const status = $('#acct-status');
  const key = $('#acct-key').value.trim(), secret = $('#acct-secret').value.trim(), pass = $('#acct-pass').value;
  if (!key || !secret || !pass) { status.textContent = 'Enter the API key, secret and passphrase.'; status.dataset.kind = 'error'; return; }
  status.textContent = 'Loading…';
  status.dataset.kind = 'pending';
  try {
    const positions = await signedGet('/api/v5/account/positions', key, secret, pass);
    const balance = await signedGet('/api/v5/account/balance', key, secret, pass);
    let level = null;
    try { level = (await signedGet('/api/v5/account/config', key, secret, pass))[0]?.acctLv; } catch { /* optional */ }
    if ($('#acct-replace').checked) {
      posRows.splice(0).forEach((r) => r.tr.remove());
      balRows.splice(0).forEach((r) => r.tr.remove());
    }
    const skipped = [];
    for (const p of positions) {
      if (!cat.byId.has(p.instId)) { skipped.push(p.instId); continue; }
      addPositionRow({ instId: p.instId, pos: p.pos, avgPx: p.avgPx, lever: p.lever });
    }
    const details = balance[0]?.details || [];
    for (const d of details) {
      if (Number(d.cashBal) === 0) continue;
      const existing = balRows.find((r) => r.ccy.value.trim().toUpperCase() === d.ccy);
      if (existing) existing.amt.value = String(Number(existing.amt.value || 0) + Number(d.cashBal));
      else addBalanceRow({ ccy: d.ccy, amt: d.cashBal });
    }
    if (level === '3' || level === '4') { $(level === '3' ? '#mode-classic' : '#mode-pm').checked = true; }
    status.textContent = `Loaded ${positions.length - skipped.length} position${positions.length - skipped.length === 1 ? '' : 's'} and ${details.filter((d) => Number(d.cashBal) !== 0).length} balance${details.length === 1 ? '' : 's'}`
      + (skipped.length ? `; skipped (not in the catalog): ${skipped.join(', ')}` : '') + '.';
    status.dataset.kind = 'ok';
    changed();
  } catch (e) {
    status.textContent = e.message;
    status.dataset.kind = 'error';
  }
}

// ---------- persistence ----------
function save() {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify({
      mode: mode(), model: model(), greeksType: $('#greeks-type').value, range: $('#graph-range').value,
      positions: posRows.map((r) => ({ instId: r.inst?.instId, pos: r.size.value, avgPx: r.px.value, lever: r.lever.value })),
      balances: balRows.map((r) => ({ ccy: r.ccy.value, amt: r.amt.value, siu: r.siu.value })),
    }));
  } catch { /* private mode */ }
}

function restore() {
  let s = null;
  try { s = JSON.parse(localStorage.getItem(STORE_KEY) || 'null'); } catch { s = null; }
  if (!s) return false;
  if (s.mode === '3') $('#mode-classic').checked = true;
  if (s.greeksType) $('#greeks-type').value = s.greeksType;
  if (s.model === 'derive-pm2') $('#model').value = s.model;
  if (s.range) $('#graph-range').value = s.range;
  (s.positions || []).forEach((p) => addPositionRow(p));
  (s.balances || []).forEach((b) => addBalanceRow(b));
  return true;
}

function loadExample() {
  posRows.splice(0).forEach((r) => r.tr.remove());
  balRows.splice(0).forEach((r) => r.tr.remove());
  const opt = [...cat.byId.values()].filter((i) => i.kind === 'option' && i.coin === 'BTC' && i.optType === 'P' && Number(i.expTime) - cat.marketTs > 20 * 864e5)
    .sort((a, b) => a.expTime - b.expTime || Math.abs(a.stk - cat.index.BTC) - Math.abs(b.stk - cat.index.BTC))[0];
  addPositionRow({ instId: 'BTC-USDT-SWAP', pos: '-100' });
  if (opt) addPositionRow({ instId: opt.instId, pos: '50' });
  addBalanceRow({ ccy: 'BTC', amt: '1' });
  addBalanceRow({ ccy: 'USDT', amt: '10000' });
  changed();
}

// ---------- start ----------
async function start() {
  try {
    await loadCatalog();
  } catch (e) {
    setStatus('Cannot load the instrument catalog', 'error');
    globalError(`Cannot load the instrument catalog: ${e.message}. Is the server running?`);
    document.body.dataset.state = 'error';
    return;
  }
  $('#add-position').addEventListener('click', () => { const r = addPositionRow(); changed(); r.pick.kind.focus(); });
  $('#add-balance').addEventListener('click', () => { const r = addBalanceRow(); changed(); r.ccy.focus(); });
  $('#load-example').addEventListener('click', loadExample);
  $('#clear-all').addEventListener('click', () => {
    posRows.splice(0).forEach((r) => r.tr.remove());
    balRows.splice(0).forEach((r) => r.tr.remove());
    changed();
  });
  for (const id of ['#mode-pm', '#mode-classic', '#greeks-type', '#model']) $(id).addEventListener('change', changed);
  $('#graph-range').addEventListener('change', () => { save(); drawGraph(); });
  $('#account-form').addEventListener('submit', loadAccount);
  let w = 0;
  new ResizeObserver(() => {
    const now = $('#graph').clientWidth;
    if (Math.abs(now - w) > 4) { w = now; drawGraph(); }
  }).observe($('#graph'));
  restore();
  changed();
}

start();
