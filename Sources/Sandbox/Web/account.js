// "Load my account": the API key's positions and balances, read with signed GETs from this server (or any
// OKX v5 endpoint it is), put into the tables. The secret is used to sign in the browser and never stored.

import { signedGet } from './api.js';
import { catalog } from './catalog.js';
import { find } from './dom.js';
import { addBalanceRow, addPositionRow, balanceRows, removeAllRows } from './portfolio-table.js';

function setAccountStatus(text, kind) {
  const status = find('#acct-status');
  status.textContent = text;
  status.dataset.kind = kind;
}

/** Handles the form's submit; `inputsChanged` runs once the tables hold the account. */
export async function loadAccount(event, inputsChanged) {
  event.preventDefault();
  const credentials = {
    apiKey: find('#acct-key').value.trim(), secretKey: find('#acct-secret').value.trim(), passphrase: find('#acct-pass').value,
  };
  if (!credentials.apiKey || !credentials.secretKey || !credentials.passphrase) {
    setAccountStatus('Enter the API key, secret and passphrase.', 'error');
    return;
  }
  setAccountStatus('Loading…', 'pending');
  try {
    const positions = await signedGet('/api/v5/account/positions', credentials);
    const balance = await signedGet('/api/v5/account/balance', credentials);
    let accountLevel = null;
    try {
      accountLevel = (await signedGet('/api/v5/account/config', credentials))[0]?.acctLv;
    } catch {
      // Optional: without it the mode stays as chosen.
    }
    if (find('#acct-replace').checked) removeAllRows();
    const skipped = [];
    for (const position of positions) {
      if (!catalog.byId.has(position.instId)) {
        skipped.push(position.instId);
        continue;
      }
      addPositionRow({ instId: position.instId, pos: position.pos, avgPx: position.avgPx, lever: position.lever });
    }
    const currencies = balance[0]?.details || [];
    for (const currency of currencies) {
      if (Number(currency.cashBal) === 0) continue;
      const existing = balanceRows.find((row) => row.currency.value.trim().toUpperCase() === currency.ccy);
      if (existing) existing.amount.value = String(Number(existing.amount.value || 0) + Number(currency.cashBal));
      else addBalanceRow({ ccy: currency.ccy, amt: currency.cashBal });
    }
    if (accountLevel === '3' || accountLevel === '4') find(accountLevel === '3' ? '#mode-classic' : '#mode-pm').checked = true;
    const loadedPositions = positions.length - skipped.length;
    const loadedBalances = currencies.filter((currency) => Number(currency.cashBal) !== 0).length;
    setAccountStatus(
      `Loaded ${loadedPositions} position${loadedPositions === 1 ? '' : 's'} and ${loadedBalances} balance${loadedBalances === 1 ? '' : 's'}`
        + (skipped.length ? `; skipped (not in the catalog): ${skipped.join(', ')}` : '') + '.',
      'ok');
    inputsChanged();
  } catch (error) {
    setAccountStatus(error.message, 'error');
  }
}
