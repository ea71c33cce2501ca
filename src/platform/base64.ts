/**
 * Base64 decoding that works in every runtime crispmask targets: the native
 * `Uint8Array.fromBase64` where it exists, `atob` elsewhere (Node 20 has
 * only the latter).
 *
 * @module
 */

/** Decodes standard base64 (with padding) into bytes. */
export function decodeBase64(text: string): Uint8Array {
  const native = (Uint8Array as unknown as { fromBase64?: (s: string) => Uint8Array }).fromBase64;
  if (typeof native === "function") return native(text);
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
