/**
 * UTF-8 validation as Postgres does it for text arriving in the database encoding
 * (`pg_verify_mbstr` with `pg_utf8_verifychar`): no NUL bytes, no overlong forms, no surrogates,
 * nothing above U+10FFFF, no truncated sequence. The error names the bytes of the first bad
 * character as Postgres does (`0xe2 0x82`).
 *
 * @module
 */

import { invalidUtf8 } from "./_errors.ts";

/** Length of the sequence starting with `lead` (pg_utf_mblen): 1 for anything unexpected. */
function sequenceLength(lead: number): number {
  if ((lead & 0x80) === 0) return 1;
  if ((lead & 0xe0) === 0xc0) return 2;
  if ((lead & 0xf0) === 0xe0) return 3;
  if ((lead & 0xf8) === 0xf0) return 4;
  return 1;
}

function isContinuation(b: number): boolean {
  return b >= 0x80 && b <= 0xbf;
}

/** Whether bytes[at..at+l) is one legal UTF-8 character (pg_utf8_islegal). */
function isLegal(bytes: Uint8Array, at: number, l: number): boolean {
  const lead = bytes[at];
  if (l === 4 && !isContinuation(bytes[at + 3])) return false;
  if (l >= 3 && !isContinuation(bytes[at + 2])) return false;
  if (l >= 2) {
    const second = bytes[at + 1];
    switch (lead) {
      case 0xe0:
        if (second < 0xa0 || second > 0xbf) return false;
        break;
      case 0xed:
        if (second < 0x80 || second > 0x9f) return false;
        break;
      case 0xf0:
        if (second < 0x90 || second > 0xbf) return false;
        break;
      case 0xf4:
        if (second < 0x80 || second > 0x8f) return false;
        break;
      default:
        if (!isContinuation(second)) return false;
    }
  }
  if (lead >= 0x80 && lead < 0xc2) return false;
  return lead <= 0xf4;
}

function describe(bytes: Uint8Array, at: number): string {
  const end = Math.min(at + sequenceLength(bytes[at]), bytes.length, at + 8);
  const parts: string[] = [];
  for (let j = at; j < end; j++) parts.push(`0x${bytes[j].toString(16).padStart(2, "0")}`);
  return parts.join(" ");
}

/** Throws 22021 unless `bytes` is valid UTF-8 without NUL bytes. */
export function checkUtf8(bytes: Uint8Array): void {
  const len = bytes.length;
  let i = 0;
  while (i < len) {
    const lead = bytes[i];
    if (lead < 0x80) {
      if (lead === 0) throw invalidUtf8(describe(bytes, i));
      i++;
      continue;
    }
    const l = sequenceLength(lead);
    if (l > len - i || !isLegal(bytes, i, l)) throw invalidUtf8(describe(bytes, i));
    i += l;
  }
}
