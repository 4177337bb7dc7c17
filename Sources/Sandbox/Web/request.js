// The Position Builder request the tables describe (OKX's position-builder body), checked field by field
// before anything is sent.

import { find } from './dom.js';
import { showFieldMessage } from './field-errors.js';
import { parseDecimal, requestNumberText } from './format.js';
import { balanceRows, positionRows } from './portfolio-table.js';

/** The chosen margin mode as OKX's acctLv: "4" portfolio margin, "3" classic. */
export const marginMode = () => (find('#mode-classic').checked ? '3' : '4');

/** The chosen margin model (its parameter set id): okx-pm or derive-pm2. */
export const marginModel = () => find('#model').value;

/**
 * Reads the tables into a request. Each field that cannot be sent gets its message; rows with an error, and
 * position rows without a size, are left out. Returns the body, the number of errors, and the rows in the
 * order of the body's simPos, simAsset and spotInUse (to place the server's messages).
 */
export function collectRequest() {
  let errorCount = 0;
  const simPos = [], simAsset = [], spotInUse = [];
  const sent = { positionRows: [], balanceRows: [], spotInUseRows: [] };
  const spotPositions = [];
  const refuse = (slot, input, message) => {
    showFieldMessage(slot, input, message);
    errorCount++;
  };

  for (const row of positionRows) {
    const sizeText = row.size.value.trim();
    const errorsBefore = errorCount;
    if (!row.instrument) refuse(row.instrumentSlot, row.picker.kind, 'Choose an instrument');
    if (sizeText === '') {
      showFieldMessage(row.sizeSlot, row.size, 'Enter a size to include this row', { note: true });
      continue;
    }
    const size = parseDecimal(sizeText);
    if (size === null) refuse(row.sizeSlot, row.size, `Size "${sizeText}" is not a number`);
    else if (size === 0) refuse(row.sizeSlot, row.size, 'Size must not be zero (use a negative size for a short)');
    const priceText = row.entryPrice.value.trim();
    const price = priceText === '' ? undefined : parseDecimal(priceText);
    if (price === null) refuse(row.entryPriceSlot, row.entryPrice, `Entry price "${priceText}" is not a number`);
    else if (price !== undefined && price <= 0) refuse(row.entryPriceSlot, row.entryPrice, 'Entry price must be greater than 0');
    const leverageText = row.leverage.value.trim();
    const leverage = leverageText === '' ? undefined : parseDecimal(leverageText);
    if (leverage === null) refuse(row.leverageSlot, row.leverage, `Leverage "${leverageText}" is not a number`);
    else if (leverage !== undefined && (leverage < 1 || leverage > 1000)) refuse(row.leverageSlot, row.leverage, 'Leverage must be between 1 and 1000');
    if (errorCount !== errorsBefore) continue;
    if (row.instrument.kind === 'spot') {
      spotPositions.push({ row, currency: row.instrument.baseCcy, amount: requestNumberText(sizeText) });
      continue;
    }
    const entry = { instId: row.instrument.instId, pos: requestNumberText(sizeText) };
    if (priceText !== '') entry.avgPx = requestNumberText(priceText);
    if (leverageText !== '') entry.lever = requestNumberText(leverageText);
    simPos.push(entry);
    sent.positionRows.push(row);
  }

  const currenciesSeen = new Set();
  for (const row of balanceRows) {
    const currency = row.currency.value.trim().toUpperCase();
    const amountText = row.amount.value.trim();
    const spotInUseText = row.spotInUse.value.trim();
    const errorsBefore = errorCount;
    if (currency === '' && amountText === '' && spotInUseText === '') {
      showFieldMessage(row.currencySlot, row.currency, 'Enter a currency and an amount', { note: true });
      continue;
    }
    if (!/^[A-Z0-9]{1,12}$/.test(currency)) {
      refuse(row.currencySlot, row.currency, currency ? `Currency "${currency}" is not a currency code` : 'Enter a currency');
    } else if (currenciesSeen.has(currency)) {
      refuse(row.currencySlot, row.currency, `${currency} is already in the table`);
    }
    currenciesSeen.add(currency);
    if (amountText === '') refuse(row.amountSlot, row.amount, 'Enter an amount');
    else if (parseDecimal(amountText) === null) refuse(row.amountSlot, row.amount, `Amount "${amountText}" is not a number`);
    const chosenSpotInUse = spotInUseText === '' ? undefined : parseDecimal(spotInUseText);
    if (chosenSpotInUse === null) refuse(row.spotInUseSlot, row.spotInUse, `Spot in use "${spotInUseText}" is not a number`);
    else if (chosenSpotInUse !== undefined && chosenSpotInUse < 0) refuse(row.spotInUseSlot, row.spotInUse, 'Spot in use must be 0 or more');
    if (errorCount !== errorsBefore) continue;
    simAsset.push({ ccy: currency, amt: requestNumberText(amountText) });
    sent.balanceRows.push(row);
    if (spotInUseText !== '') {
      spotInUse.push({ ccy: currency, amt: requestNumberText(spotInUseText) });
      sent.spotInUseRows.push(row);
    }
  }

  // Spot rows become balances; the server's messages about them land on the row's size and instrument.
  for (const { row, currency, amount } of spotPositions) {
    if (currenciesSeen.has(currency)) {
      refuse(row.sizeSlot, row.size, `${currency} is also in the balances or another spot row: enter the total once`);
      continue;
    }
    currenciesSeen.add(currency);
    simAsset.push({ ccy: currency, amt: amount });
    sent.balanceRows.push({ amountSlot: row.sizeSlot, amount: row.size, currencySlot: row.instrumentSlot, currency: row.picker.kind });
  }

  const body = { acctLv: marginMode(), greeksType: find('#greeks-type').value, simPos, simAsset };
  if (spotInUse.length) body.spotInUse = spotInUse;
  // Another margin model is chosen by its parameter set; Derive has no classic mode.
  if (marginModel() === 'derive-pm2') {
    body.paramsId = 'derive-pm2';
    delete body.acctLv;
  }
  return { body, errorCount, sent };
}
