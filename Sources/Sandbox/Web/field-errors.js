// Messages about what the user typed: next to the field they concern (`.field-error`, with aria-invalid and
// aria-describedby on the input), or page-wide in #global-error when they name no field.

import { find } from './dom.js';

/** Removes every field message and the page-wide error. */
export function clearErrors() {
  document.querySelectorAll('#inputs .field-error, #inputs .field-note').forEach((message) => message.remove());
  document.querySelectorAll('#inputs [aria-invalid]').forEach((input) => {
    input.removeAttribute('aria-invalid');
    input.removeAttribute('aria-describedby');
  });
  const banner = find('#global-error');
  banner.hidden = true;
  banner.textContent = '';
}

/** Shows `message` in `slot`, as an error that marks `input` invalid, or as a neutral note. */
export function showFieldMessage(slot, input, message, { note = false } = {}) {
  const element = document.createElement('div');
  element.className = note ? 'field-note' : 'field-error';
  element.id = `${slot.closest('tr')?.dataset.rowId || 'x'}-${slot.dataset.for}-err`;
  element.textContent = message;
  slot.append(element);
  if (input && !note) {
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', element.id);
  }
}

/** Shows a message that belongs to no field. */
export function showGlobalError(message) {
  const banner = find('#global-error');
  banner.textContent = message;
  banner.hidden = false;
}

/**
 * Puts a server message next to the field its path names (`simPos[1].pos`, `simAsset[0].ccy`,
 * `spotInUse[0].amt`), using the rows that were sent in that order; "Instrument ID does not exist: X" goes to
 * the row of X; anything else is page-wide.
 */
export function showServerError(message, sent) {
  const path = /\b(simPos|simAsset|spotInUse)(?:\[(\d+)\])?(?:\.(\w+))?/.exec(message);
  if (path) {
    const [, list, index, field] = path;
    const rows = { simPos: sent.positionRows, simAsset: sent.balanceRows, spotInUse: sent.spotInUseRows }[list];
    const row = index !== undefined ? rows[Number(index)] : null;
    if (row) {
      let target;
      if (list === 'simPos') {
        target = { pos: [row.sizeSlot, row.size], avgPx: [row.entryPriceSlot, row.entryPrice], lever: [row.leverageSlot, row.leverage] }[field]
          || [row.instrumentSlot, row.picker.kind];
      } else if (list === 'spotInUse') {
        target = [row.spotInUseSlot, row.spotInUse];
      } else {
        target = field === 'amt' ? [row.amountSlot, row.amount] : [row.currencySlot, row.currency];
      }
      showFieldMessage(target[0], target[1], message);
      return;
    }
  }
  const unknown = /Instrument ID does not exist: (\S+)/.exec(message);
  const row = unknown && sent.positionRows.find((candidate) => candidate.instrument?.instId === unknown[1]);
  if (row) showFieldMessage(row.instrumentSlot, row.picker.kind, message);
  else showGlobalError(message);
}
