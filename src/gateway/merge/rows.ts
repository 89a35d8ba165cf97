/**
 * DataRow and RowDescription frames as the merge needs them: the values of a row (views into
 * its frame, valid as long as the frame), a row made of the first columns of another, a row of
 * given values, and a RowDescription cut down to the columns the client sees.
 *
 * @module
 */

import { BackendCode } from "../../shared/wire/mod.ts";

/** A column of a RowDescription: its type, format (0 text, 1 binary) and type modifier. */
export interface ColumnInfo {
  typeOid: number;
  format: number;
  /** -1 (or absent): none. */
  typeModifier?: number;
}

/** The values of a DataRow frame (null for SQL NULL), as views into the frame. */
export function rowValues(frame: Uint8Array): (Uint8Array | null)[] {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const n = dv.getInt16(5);
  const out: (Uint8Array | null)[] = new Array(n);
  let off = 7;
  for (let i = 0; i < n; i++) {
    const len = dv.getInt32(off);
    off += 4;
    if (len < 0) out[i] = null;
    else {
      out[i] = frame.subarray(off, off + len);
      off += len;
    }
  }
  return out;
}

/** A DataRow frame of `values`. */
export function dataRow(values: (Uint8Array | null)[]): Uint8Array {
  let size = 7;
  for (const v of values) size += 4 + (v?.length ?? 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out[0] = BackendCode.DataRow;
  dv.setInt32(1, size - 1);
  dv.setInt16(5, values.length);
  let off = 7;
  for (const v of values) {
    if (v === null) {
      dv.setInt32(off, -1);
      off += 4;
    } else {
      dv.setInt32(off, v.length);
      out.set(v, off + 4);
      off += 4 + v.length;
    }
  }
  return out;
}

/** A DataRow frame of the first `n` columns of `frame` (one copy of those bytes). */
export function firstColumns(frame: Uint8Array, n: number): Uint8Array {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let off = 7;
  for (let i = 0; i < n; i++) {
    const len = dv.getInt32(off);
    off += 4 + Math.max(len, 0);
  }
  const out = new Uint8Array(off);
  out.set(frame.subarray(0, off));
  const ov = new DataView(out.buffer);
  ov.setInt32(1, off - 1);
  ov.setInt16(5, n);
  return out;
}

/** The type and format of each column of a RowDescription frame. */
export function describeColumns(frame: Uint8Array): ColumnInfo[] {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const n = dv.getInt16(5);
  const out: ColumnInfo[] = [];
  let off = 7;
  for (let i = 0; i < n; i++) {
    while (frame[off] !== 0) off++;
    off++;
    out.push({
      typeOid: dv.getUint32(off + 6),
      format: dv.getInt16(off + 16),
      typeModifier: dv.getInt32(off + 12),
    });
    off += 18;
  }
  return out;
}

/** The names of the fields of a RowDescription frame. */
export function fieldNames(frame: Uint8Array): string[] {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const names: string[] = [];
  let off = 7;
  for (let i = 0, n = dv.getInt16(5); i < n; i++) {
    const end = frame.indexOf(0, off);
    names.push(namesDecoder.decode(frame.subarray(off, end)));
    off = end + 1 + 18;
  }
  return names;
}

const namesDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** A RowDescription frame of the first `n` fields of `frame`. */
export function firstFields(frame: Uint8Array, n: number): Uint8Array {
  let off = 7;
  for (let i = 0; i < n; i++) {
    while (frame[off] !== 0) off++;
    off += 1 + 18;
  }
  const out = new Uint8Array(off);
  out.set(frame.subarray(0, off));
  const dv = new DataView(out.buffer);
  dv.setInt32(1, off - 1);
  dv.setInt16(5, n);
  return out;
}
