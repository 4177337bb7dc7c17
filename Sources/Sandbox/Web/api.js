// The sandbox's OKX v5 REST API, as the page calls it: public GETs and POSTs, and signed private GETs.

export const PUBLIC_API = '/api/v5/public/';

/** GET `url` and return the envelope's `data`; an answer with a non-zero code is an error with OKX's message. */
export async function getData(url) {
  const response = await fetch(url);
  const envelope = await response.json();
  if (envelope.code !== '0') throw new Error(envelope.msg || 'request failed');
  return envelope.data;
}

/**
 * POST `body` to a public endpoint (`position-builder`, `-graph`, `-compare`) and return `data[0]`. A refusal
 * by the server is an error with `fromServer` set, so its message can be placed next to the field it names.
 */
export async function postPublic(endpoint, body) {
  const response = await fetch(PUBLIC_API + endpoint, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  let envelope;
  try {
    envelope = await response.json();
  } catch {
    throw new Error(`HTTP ${response.status}: the server did not answer JSON`);
  }
  if (envelope.code !== '0') {
    const error = new Error(envelope.msg || `error ${envelope.code}`);
    error.fromServer = true;
    throw error;
  }
  return envelope.data[0];
}

/**
 * A private GET signed as OKX signs it, in this browser (WebCrypto):
 * `OK-ACCESS-SIGN = Base64(HMAC-SHA256(secret, timestamp + "GET" + path))`. The secret is used here only.
 */
export async function signedGet(path, { apiKey, secretKey, passphrase }) {
  if (!window.crypto?.subtle) throw new Error('WebCrypto is unavailable here: open the page via http://localhost or https');
  const encoder = new TextEncoder();
  const timestamp = new Date().toISOString();
  const key = await crypto.subtle.importKey('raw', encoder.encode(secretKey), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const signature = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(timestamp + 'GET' + path)));
  const response = await fetch(path, {
    headers: {
      'OK-ACCESS-KEY': apiKey,
      'OK-ACCESS-SIGN': btoa(String.fromCharCode(...signature)),
      'OK-ACCESS-TIMESTAMP': timestamp,
      'OK-ACCESS-PASSPHRASE': passphrase,
    },
  });
  const envelope = await response.json();
  if (envelope.code !== '0') throw new Error(`${path}: ${envelope.msg} (code ${envelope.code})`);
  return envelope.data;
}
