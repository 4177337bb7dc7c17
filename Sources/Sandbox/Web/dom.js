// Small DOM helpers shared by the page's modules.

/** The first element matching a CSS selector (in the document, or under `root`). */
export const find = (selector, root = document) => root.querySelector(selector);

/** The page-wide status pill: `kind` is ok, pending or error (tests read it through data-kind). */
export function setStatus(text, kind) {
  const pill = find('#status');
  pill.textContent = text;
  pill.dataset.kind = kind;
}
