// The page's inputs kept in localStorage, so a reload shows the same portfolio.

import { find } from './dom.js';
import { addBalanceRow, addPositionRow, balanceRows, positionRows } from './portfolio-table.js';
import { marginMode, marginModel } from './request.js';

// The format of version 1 (its field names included) is kept: pages saved before keep loading.
const STORAGE_KEY = 'pm-position-builder-v1';

/** Saves the mode, model, Greeks type, graph range and both tables. */
export function saveInputs() {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({
      mode: marginMode(), model: marginModel(), greeksType: find('#greeks-type').value, range: find('#graph-range').value,
      positions: positionRows.map((row) => ({ instId: row.instrument?.instId, pos: row.size.value, avgPx: row.entryPrice.value, lever: row.leverage.value })),
      balances: balanceRows.map((row) => ({ ccy: row.currency.value, amt: row.amount.value, siu: row.spotInUse.value })),
    }));
  } catch {
    // Storage unavailable (private mode): the page works without it.
  }
}

/** Restores what ``saveInputs`` saved; false when nothing was saved. */
export function restoreInputs() {
  let saved = null;
  try {
    saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || 'null');
  } catch {
    saved = null;
  }
  if (!saved) return false;
  if (saved.mode === '3') find('#mode-classic').checked = true;
  if (saved.greeksType) find('#greeks-type').value = saved.greeksType;
  if (saved.model === 'derive-pm2') find('#model').value = saved.model;
  if (saved.range) find('#graph-range').value = saved.range;
  (saved.positions || []).forEach((position) => addPositionRow(position));
  (saved.balances || []).forEach((balance) => addBalanceRow({ ccy: balance.ccy, amt: balance.amt, spotInUse: balance.siu }));
  return true;
}
