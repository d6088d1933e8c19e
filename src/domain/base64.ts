/**
 * proto3 JSON `bytes`: base64 in the standard or the URL-safe alphabet, padded or not, as Google
 * accepted (the Python samples send URL-safe, the Node samples standard). Anything else is
 * refused rather than decoded leniently: Node's decoder would skip what it does not understand.
 */

/** Why `value` is not base64 Keyway accepts, or undefined when it is. */
export function base64Problem(value: string): string | undefined {
  const body = value.replace(/={1,2}$/, '');
  if (!/^[A-Za-z0-9+/_-]*$/.test(body)) return 'characters outside the base64 alphabets';
  if (/[+/]/.test(body) && /[-_]/.test(body)) return 'mixes the standard and URL-safe alphabets';
  if (body.length % 4 === 1) return 'the length is not that of any base64 text';
  if (body.length !== value.length && value.length % 4 !== 0) return 'wrong padding';
  return undefined;
}

/** Decodes what base64Problem accepted; the result for anything else is unspecified. */
export function decodeBase64(value: string): Buffer {
  return Buffer.from(value.replace(/={1,2}$/, '').replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}
