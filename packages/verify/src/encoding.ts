/**
 * Byte encodings used by the wire formats, written out rather than borrowed
 * from `Buffer` (Node only) or `atob` (lenient: it skips whitespace and accepts
 * non-canonical input). Decoders here are strict and canonical — one string per
 * byte sequence — so an edited key or file cannot decode to the same bytes
 * under a different spelling.
 */

const STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function table(alphabet: string): Int16Array {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < alphabet.length; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
}
const STD_TABLE = table(STD);
const URL_TABLE = table(URL);

function encode(bytes: Uint8Array, alphabet: string, pad: boolean): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    out += alphabet[(n >> 18) & 63]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + alphabet[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = (bytes[i] as number) << 16;
    out += alphabet[(n >> 18) & 63]! + alphabet[(n >> 12) & 63]! + (pad ? '==' : '');
  } else if (rest === 2) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8);
    out += alphabet[(n >> 18) & 63]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + (pad ? '=' : '');
  }
  return out;
}

/** Decodes unpadded-or-padded text in one alphabet; null unless the text is the canonical encoding of its bytes. */
function decode(text: string, lookup: Int16Array, padding: 'forbidden' | 'optional'): Uint8Array | null {
  let end = text.length;
  if (padding === 'optional' && end % 4 === 0) {
    if (text.endsWith('==')) end -= 2;
    else if (text.endsWith('=')) end -= 1;
  }
  if (end % 4 === 1) return null;
  if (padding === 'optional' && end !== text.length && text.length % 4 !== 0) return null;
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? (lookup[c] as number) : -1;
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  // Leftover bits must be zero, or two spellings would decode to the same bytes.
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

export const base64UrlEncode = (bytes: Uint8Array): string => encode(bytes, URL, false);
/** Unpadded base64url, canonical only. */
export const base64UrlDecode = (text: string): Uint8Array | null => decode(text, URL_TABLE, 'forbidden');
export const base64Encode = (bytes: Uint8Array): string => encode(bytes, STD, true);
/** Standard base64, padding optional, canonical only; strip whitespace first. */
export const base64Decode = (text: string): Uint8Array | null => decode(text, STD_TABLE, 'optional');

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export const utf8 = (text: string): Uint8Array => encoder.encode(text);

/** Null for invalid UTF-8 rather than U+FFFD: a payload that is not text is malformed, not "close enough". */
export function utf8Decode(bytes: Uint8Array): string | null {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return null;
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Parses JSON and returns it only if it is a plain object (not an array, not a primitive). */
export function parseJsonObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Splits base64 text into lines of `width` characters (PEM-style armor). */
export function wrap(text: string, width = 76): string {
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += width) lines.push(text.slice(i, i + width));
  return lines.join('\n');
}

/**
 * Finds `-----BEGIN <label>-----` … `-----END <label>-----` and returns the
 * decoded body. Whitespace anywhere inside the body (LF, CRLF, spaces from a
 * copy-paste) is ignored; text around the armor is ignored too, since only the
 * signed content inside decides validity.
 */
export function dearmor(text: string, label: string): Uint8Array | null {
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  const start = text.indexOf(begin);
  if (start < 0 || text.indexOf(begin, start + 1) >= 0) return null;
  const stop = text.indexOf(end, start + begin.length);
  if (stop < 0) return null;
  const body = text.slice(start + begin.length, stop).replace(/[ \t\r\n]+/g, '');
  if (body.length === 0) return null;
  return base64Decode(body);
}

export function armor(bytes: Uint8Array, label: string): string {
  return `-----BEGIN ${label}-----\n${wrap(base64Encode(bytes))}\n-----END ${label}-----\n`;
}
