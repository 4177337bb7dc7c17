// Numbers and text for the page: every figure the page shows goes through one of these.

const twoDecimals = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const sixSignificantDigits = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 6 });

/** Whether an API value (a string, usually) holds a finite number. */
export const isNumeric = (value) => value !== '' && value !== null && value !== undefined && Number.isFinite(Number(value));

/** USD with cents and thousands separators ("12,345.68"); "—" when there is no number. */
export const formatUSD = (value) => (isNumeric(value) ? twoDecimals.format(Number(value)) : '—');

/** A plain number with two decimals ("3.25"), for leverage; "—" when there is no number. */
export const formatTwoDecimals = (value) => (isNumeric(value) ? twoDecimals.format(Number(value)) : '—');

/** Up to six significant digits ("88,524.1"), for prices, sizes and Greeks; "—" when there is no number. */
export const formatNumber = (value) => (isNumeric(value) ? sixSignificantDigits.format(Number(value)) : '—');

/** A ratio as a percentage with two decimals (1.5 → "150.00 %"). */
export const formatPercent = (ratio) => (isNumeric(ratio) ? twoDecimals.format(Number(ratio) * 100) + ' %' : '—');

/** A signed spot move (0.04 → "+4 %", −0.12 → "−12 %"). */
export function formatMove(fraction) {
  if (!isNumeric(fraction)) return '—';
  const value = Number(fraction);
  const sign = value > 0 ? '+' : value < 0 ? '−' : '';
  return sign + sixSignificantDigits.format(Math.abs(value * 100)) + ' %';
}

/** A short figure for a heat-map cell or an axis tick (1234 → "1.2k", −2500000 → "−2.5M"). */
export function formatCompact(value) {
  const magnitude = Math.abs(value);
  let text;
  if (magnitude >= 1e6) text = (magnitude / 1e6).toFixed(magnitude >= 1e7 ? 0 : 1) + 'M';
  else if (magnitude >= 1e4) text = (magnitude / 1e3).toFixed(0) + 'k';
  else if (magnitude >= 1e3) text = (magnitude / 1e3).toFixed(1) + 'k';
  else text = magnitude.toFixed(magnitude >= 100 ? 0 : 1);
  return (value < 0 ? '−' : '') + text;
}

const htmlEntities = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe to put inside HTML, attribute values included. */
export const escapeHTML = (text) => String(text).replace(/[&<>"']/g, (character) => htmlEntities[character]);

/** The number a user typed, when it is a plain decimal (what the API accepts); null otherwise. */
export function parseDecimal(text) {
  const trimmed = String(text).trim();
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(trimmed)) return null;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : null;
}

/** A typed number as the request sends it: trimmed, without a leading "+". */
export const requestNumberText = (text) => String(text).trim().replace(/^\+/, '');
