// The instrument catalog and index prices the page offers, loaded once from the server, and the instrument
// picker's choices: kind → coin → margin currency → expiry → strike → call or put.

import { PUBLIC_API, getData } from './api.js';
import { find } from './dom.js';
import { escapeHTML, formatNumber } from './format.js';

/** The picker's instrument kinds, with their OKX instType. */
export const INSTRUMENT_TYPES = { spot: 'SPOT', perpetual: 'SWAP', future: 'FUTURES', option: 'OPTION' };
// Spot is held as a balance: a spot row is sent as simAsset (the engine margins spot through balances).
const KIND_LABELS = { spot: 'Spot (balance)', perpetual: 'Perpetual', future: 'Future', option: 'Option' };
const MARGIN_LABELS = { USDT: 'USDT-margined', USDC: 'USDC-margined', USD: 'Coin-margined (USD)' };
const DAY_MS = 864e5;

/**
 * What the server lists: instruments by id and as a tree (kind → coin → quote [→ expiry [→ strike → C/P]]),
 * each coin's USD index, the currencies a balance may hold, and the market's time (Unix ms).
 */
export const catalog = {
  byId: new Map(),
  tree: { spot: {}, perpetual: {}, future: {}, option: {} },
  indexUSD: {},
  currencies: [],
  marketTime: 0,
};

/** Loads every instrument and the USD indices, fills `catalog`, the currency list and the market line. */
export async function loadCatalog() {
  const [spots, perpetuals, futures, options, indices] = await Promise.all([
    getData(PUBLIC_API + 'instruments?instType=SPOT'), getData(PUBLIC_API + 'instruments?instType=SWAP'),
    getData(PUBLIC_API + 'instruments?instType=FUTURES'), getData(PUBLIC_API + 'instruments?instType=OPTION'),
    getData('/api/v5/market/index-tickers?quoteCcy=USD'),
  ]);
  const place = (tree, path, instrument) => {
    let node = tree;
    path.slice(0, -1).forEach((key) => { node = node[key] ??= {}; });
    node[path[path.length - 1]] = instrument;
  };
  for (const [kind, list] of [['spot', spots], ['perpetual', perpetuals], ['future', futures], ['option', options]]) {
    for (const instrument of list) {
      const [coin, quote] = kind === 'spot' ? [instrument.baseCcy, instrument.quoteCcy] : instrument.instFamily.split('-');
      const expiry = instrument.instId.split('-')[2];
      Object.assign(instrument, { kind, coin, quote, exp: expiry });
      catalog.byId.set(instrument.instId, instrument);
      if (kind === 'spot' || kind === 'perpetual') place(catalog.tree[kind], [coin, quote], instrument);
      else if (kind === 'future') place(catalog.tree.future, [coin, quote, expiry], instrument);
      else place(catalog.tree.option, [coin, quote, expiry, instrument.stk, instrument.optType], instrument);
    }
  }
  const currencies = new Set(['USDT', 'USDC']);
  for (const ticker of indices) {
    const [coin] = ticker.instId.split('-');
    catalog.indexUSD[coin] = Number(ticker.idxPx);
    currencies.add(coin);
    catalog.marketTime = Number(ticker.ts);
  }
  catalog.currencies = [...currencies].sort();
  find('#ccy-list').innerHTML = catalog.currencies.map((currency) => `<option value="${escapeHTML(currency)}">`).join('');
  const when = new Date(catalog.marketTime).toISOString().replace('T', ' ').slice(0, 16);
  find('#market-info').textContent = `market ${when} UTC · BTC ${formatNumber(catalog.indexUSD.BTC)}`;
}

/** "2026-03-27 (52d)": an instrument's expiry date and the days left at the market's time. */
function expiryLabel(instrument) {
  const days = (Number(instrument.expTime) - catalog.marketTime) / DAY_MS;
  const date = new Date(Number(instrument.expTime)).toISOString().slice(0, 10);
  return `${date} (${days < 1 ? days.toFixed(1) : Math.round(days)}d)`;
}

/** The first instrument under a node of the catalog tree. */
function firstInstrument(node) {
  while (node && !node.instId) node = Object.values(node)[0];
  return node;
}

/**
 * The picker's choices, as [value, label] pairs per level, given the choices made above each level; a level
 * that does not apply to the kind (an expiry for a perpetual) is absent.
 */
export function pickerChoices(selection) {
  const choices = { kind: Object.keys(INSTRUMENT_TYPES).map((kind) => [kind, KIND_LABELS[kind]]) };
  const byCoin = catalog.tree[selection.kind] || {};
  choices.coin = Object.keys(byCoin).sort().map((coin) => [coin, coin]);
  const byQuote = byCoin[selection.coin] || {};
  choices.quote = Object.keys(byQuote).sort()
    .map((quote) => [quote, selection.kind === 'spot' ? `${selection.coin}-${quote}` : MARGIN_LABELS[quote] || quote]);
  if (selection.kind === 'spot' || selection.kind === 'perpetual') return choices;
  const byExpiry = byQuote[selection.quote] || {};
  choices.exp = Object.keys(byExpiry).sort().map((expiry) => [expiry, expiryLabel(firstInstrument(byExpiry[expiry]))]);
  if (selection.kind === 'future') return choices;
  const byStrike = byExpiry[selection.exp] || {};
  choices.strike = Object.keys(byStrike).sort((a, b) => a - b).map((strike) => [strike, formatNumber(Number(strike))]);
  choices.type = [['C', 'Call'], ['P', 'Put']].filter(([type]) => (byStrike[selection.strike] || {})[type]);
  return choices;
}

/** The instrument a complete selection names, or null. */
export function resolveInstrument(selection) {
  const byExpiry = catalog.tree[selection.kind]?.[selection.coin]?.[selection.quote];
  if (!byExpiry) return null;
  if (selection.kind === 'spot' || selection.kind === 'perpetual') return byExpiry;
  if (selection.kind === 'future') return byExpiry[selection.exp] || null;
  return byExpiry[selection.exp]?.[selection.strike]?.[selection.type] || null;
}
