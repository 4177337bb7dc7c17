// The two input tables: positions (an instrument picker, size, entry price, leverage) and balances (currency,
// amount, spot in use). Each row keeps its inputs and the slots where its field errors appear.

import { catalog, pickerChoices, resolveInstrument } from './catalog.js';
import { find } from './dom.js';
import { escapeHTML, formatNumber, parseDecimal } from './format.js';

/** The position rows, in table order. */
export const positionRows = [];
/** The balance rows, in table order. */
export const balanceRows = [];

const PICKER_LEVELS = [['kind', 'Kind'], ['coin', 'Coin'], ['quote', 'Margin'], ['exp', 'Expiry'], ['strike', 'Strike'], ['type', 'Call or put']];
let nextRowNumber = 1;
let inputChanged = () => {};

/** Registers what runs after every edit of a row (typing, picking, removing). */
export function onInputChange(listener) {
  inputChanged = listener;
}

function tableCell(label, className) {
  const cell = document.createElement('td');
  cell.dataset.label = label;
  if (className) cell.className = className;
  return cell;
}

/** Puts `control` in `cell` with a label for screen readers. */
function withHiddenLabel(cell, id, labelText, control) {
  const label = document.createElement('label');
  label.className = 'sr-only';
  label.htmlFor = id;
  label.textContent = labelText;
  control.id = id;
  cell.append(label, control);
  return control;
}

function decimalInput(className, placeholder) {
  const input = document.createElement('input');
  Object.assign(input, { className, type: 'text', inputMode: 'decimal', autocomplete: 'off', spellcheck: false, placeholder });
  return input;
}

/** The place in a cell where the messages about `field` (a request field name) appear. */
function errorSlot(cell, field) {
  const slot = document.createElement('div');
  slot.className = 'err-slot';
  slot.dataset.for = field;
  cell.append(slot);
  return slot;
}

function removeButtonCell(label, onClick) {
  const cell = tableCell('', 'c-remove');
  const button = document.createElement('button');
  Object.assign(button, { type: 'button', className: 'remove-row', title: label, textContent: '×' });
  button.setAttribute('aria-label', label);
  button.addEventListener('click', onClick);
  cell.append(button);
  return cell;
}

/**
 * Adds a position row, picking `init.instId` when the catalog has it (else `init.kind`/`coin`/`quote`, else a
 * BTC USDT perpetual), with `init.pos`, `avgPx` and `lever` filled in.
 */
export function addPositionRow(init = {}) {
  const number = nextRowNumber++;
  const tr = document.createElement('tr');
  tr.className = 'pos-row';
  tr.dataset.rowId = number;
  const row = { number, tr, selection: {}, picker: {} };

  const instrumentCell = tableCell('Instrument', 'c-inst');
  const picker = document.createElement('div');
  picker.className = 'picker';
  for (const [level, text] of PICKER_LEVELS) {
    const wrapper = document.createElement('span');
    wrapper.className = `pick pick-${level}-wrap`;
    const select = document.createElement('select');
    select.className = `pick-${level}`;
    withHiddenLabel(wrapper, `p${number}-${level}`, `${text}, position ${number}`, select);
    select.addEventListener('change', () => {
      row.selection[level] = select.value;
      refreshPicker(row);
      inputChanged();
    });
    row.picker[level] = select;
    picker.append(wrapper);
  }
  row.instrumentText = document.createElement('div');
  row.instrumentText.className = 'inst-id';
  instrumentCell.append(picker, row.instrumentText);
  row.instrumentSlot = errorSlot(instrumentCell, 'instId');

  const sizeCell = tableCell('Size (contracts)', 'c-size');
  row.size = withHiddenLabel(sizeCell, `p${number}-size`, `Size in contracts, position ${number} (negative = short)`, decimalInput('pos-size', 'e.g. -100'));
  row.sizeSlot = errorSlot(sizeCell, 'pos');
  row.sizeHint = document.createElement('div');
  row.sizeHint.className = 'hint size-hint';
  sizeCell.append(row.sizeHint);

  const priceCell = tableCell('Entry price', 'c-px');
  row.entryPrice = withHiddenLabel(priceCell, `p${number}-px`, `Entry price, position ${number} (optional; mark when empty)`, decimalInput('pos-px', 'mark'));
  row.entryPriceSlot = errorSlot(priceCell, 'avgPx');

  const leverageCell = tableCell('Leverage', 'c-lever');
  row.leverage = withHiddenLabel(leverageCell, `p${number}-lever`, `Leverage, position ${number} (classic mode, optional)`, decimalInput('pos-lever', 'classic'));
  row.leverage.title = 'Classic mode only; empty = the default leverage';
  row.leverageSlot = errorSlot(leverageCell, 'lever');

  tr.append(instrumentCell, sizeCell, priceCell, leverageCell, removeButtonCell(`Remove position ${number}`, () => {
    positionRows.splice(positionRows.indexOf(row), 1);
    tr.remove();
    inputChanged();
  }));
  for (const input of [row.size, row.entryPrice, row.leverage]) input.addEventListener('input', inputChanged);

  const instrument = init.instId && catalog.byId.get(init.instId);
  if (instrument) {
    row.selection = {
      kind: instrument.kind, coin: instrument.coin, quote: instrument.quote, exp: instrument.exp, strike: instrument.stk, type: instrument.optType,
    };
  } else {
    row.selection = { kind: init.kind || 'perpetual', coin: init.coin || 'BTC', quote: init.quote || 'USDT' };
  }
  if (init.pos !== undefined) row.size.value = init.pos;
  if (init.avgPx) row.entryPrice.value = init.avgPx;
  if (init.lever) row.leverage.value = init.lever;
  positionRows.push(row);
  find('#positions-body').append(tr);
  refreshPicker(row);
  return row;
}

/**
 * Rebuilds a row's picker after a choice: each level keeps its choice when still offered, else takes BTC,
 * USDT, the strike nearest the previous one (or the index), or the first offered.
 */
function refreshPicker(row) {
  const selection = row.selection;
  const previousStrike = Number(selection.strike);
  for (const [level] of PICKER_LEVELS) {
    const choices = pickerChoices(selection)[level];
    const select = row.picker[level];
    select.parentElement.hidden = !choices;
    if (!choices) {
      delete selection[level];
      continue;
    }
    if (!choices.some(([value]) => value === selection[level])) {
      let choice = choices[0]?.[0];
      if (level === 'coin' && choices.some(([value]) => value === 'BTC')) choice = 'BTC';
      if (level === 'quote' && choices.some(([value]) => value === 'USDT')) choice = 'USDT';
      if (level === 'strike' && choices.length) {
        const target = Number.isFinite(previousStrike) ? previousStrike : catalog.indexUSD[selection.coin] || 0;
        choice = choices.reduce((best, [value]) => (Math.abs(value - target) < Math.abs(best - target) ? value : best), choices[0][0]);
      }
      selection[level] = choice;
    }
    select.innerHTML = choices.map(([value, label]) => `<option value="${escapeHTML(value)}">${escapeHTML(label)}</option>`).join('');
    select.value = selection[level] ?? '';
  }
  row.instrument = resolveInstrument(selection);
  row.instrumentText.textContent = row.instrument ? row.instrument.instId : 'no instrument';
  updateSizeHint(row);
}

/** The line under a size: what one contract, or the typed size, is in the contract's currency. */
export function updateSizeHint(row) {
  const instrument = row.instrument;
  if (!instrument) {
    row.sizeHint.textContent = '';
    return;
  }
  if (instrument.kind === 'spot') {
    row.sizeHint.textContent = `${instrument.baseCcy} held as a balance (coins; negative = borrowed)`;
    return;
  }
  const size = parseDecimal(row.size.value);
  const perContract = Number(instrument.ctVal) * Number(instrument.ctMult || 1);
  row.sizeHint.textContent = size
    ? `= ${formatNumber(size * perContract)} ${instrument.ctValCcy}`
    : `1 contract = ${formatNumber(perContract)} ${instrument.ctValCcy}`;
}

/** Adds a balance row with `init.ccy`, `amt` and `spotInUse` filled in. */
export function addBalanceRow(init = {}) {
  const number = nextRowNumber++;
  const tr = document.createElement('tr');
  tr.className = 'bal-row';
  tr.dataset.rowId = number;
  const row = { number, tr };
  const currencyCell = tableCell('Currency', 'c-ccy');
  row.currency = withHiddenLabel(currencyCell, `b${number}-ccy`, `Currency, balance ${number}`, decimalInput('bal-ccy', 'BTC'));
  row.currency.inputMode = 'text';
  row.currency.setAttribute('list', 'ccy-list');
  row.currency.autocapitalize = 'characters';
  row.currencySlot = errorSlot(currencyCell, 'ccy');
  const amountCell = tableCell('Amount (− = borrowed)', 'c-amt');
  row.amount = withHiddenLabel(amountCell, `b${number}-amt`, `Amount, balance ${number}`, decimalInput('bal-amt', 'e.g. 1.5'));
  row.amountSlot = errorSlot(amountCell, 'amt');
  const spotInUseCell = tableCell('Spot in use (PM, optional)', 'c-siu');
  row.spotInUse = withHiddenLabel(spotInUseCell, `b${number}-siu`, `Spot in use, balance ${number} (optional, coins)`, decimalInput('bal-siu', 'auto'));
  row.spotInUseSlot = errorSlot(spotInUseCell, 'spotInUse');
  tr.append(currencyCell, amountCell, spotInUseCell, removeButtonCell(`Remove balance ${number}`, () => {
    balanceRows.splice(balanceRows.indexOf(row), 1);
    tr.remove();
    inputChanged();
  }));
  for (const input of [row.currency, row.amount, row.spotInUse]) input.addEventListener('input', inputChanged);
  row.currency.addEventListener('blur', () => { row.currency.value = row.currency.value.trim().toUpperCase(); });
  if (init.ccy) row.currency.value = init.ccy;
  if (init.amt !== undefined) row.amount.value = init.amt;
  if (init.spotInUse) row.spotInUse.value = init.spotInUse;
  balanceRows.push(row);
  find('#balances-body').append(tr);
  return row;
}

/** Empties both tables. */
export function removeAllRows() {
  positionRows.splice(0).forEach((row) => row.tr.remove());
  balanceRows.splice(0).forEach((row) => row.tr.remove());
}

/** Shows each position's mark (from a response's positions) as its entry price's placeholder. */
export function showMarksAsPlaceholders(marksByInstrument) {
  for (const row of positionRows) {
    const mark = row.instrument && marksByInstrument.get(row.instrument.instId);
    row.entryPrice.placeholder = mark ? `mark ${formatNumber(mark)}` : 'mark';
  }
}
