/**
 * The data-plane messages (`DataPlaneRequest`, `DataPlaneResponse` in multipoolerdata.proto),
 * encoded and decoded by hand. They carry every client frame and every result between gateway
 * and pooler, so they skip protobufjs's generic path (object conversion, a Writer per message):
 * one size pass, one buffer, and `payload` decoded as a view of the received message (no copy).
 * The bytes are plain proto3, so any protobuf implementation still reads and writes them.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { slab } from "../wire/slab.ts";
import type {
  DataPlaneRequest,
  DataPlaneResponse,
  SessionOp,
  SessionRequest,
  SessionResponse,
} from "./types.ts";

const OP_NUMBER: Record<SessionOp, number> = {
  SESSION_OP_UNSPECIFIED: 0,
  EXECUTE: 1,
  CLOSE: 2,
  OPEN: 3,
  ACK: 4,
  CANCEL: 5,
};
const OP_NAME: SessionOp[] = [
  "SESSION_OP_UNSPECIFIED",
  "EXECUTE",
  "CLOSE",
  "OPEN",
  "ACK",
  "CANCEL",
];

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  n = Math.floor(n / 0x10000000);
  while (n > 0) {
    size++;
    n = Math.floor(n / 0x80);
  }
  return size;
}

/** Writes proto fields into one buffer sized beforehand. */
class Out {
  readonly buf: Uint8Array;
  pos = 0;
  constructor(size: number) {
    this.buf = slab.alloc(size);
  }
  varint(n: number): void {
    const b = this.buf;
    while (n >= 0x80) {
      b[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    b[this.pos++] = n;
  }
  tag(field: number, wire: number): void {
    this.buf[this.pos++] = (field << 3) | wire; // every field number here is below 16
  }
  bytes(field: number, data: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.varint(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }
}

/** Reads proto fields from a view; throws on truncated or malformed input. */
class In {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;
  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }
  varint(): number {
    const b = this.buf;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new RangeError("data-plane message truncated");
      const byte = b[this.pos++];
      result += (byte & 0x7f) * mul;
      if (byte < 0x80) return result;
      mul *= 0x80;
    }
    throw new RangeError("data-plane message has a malformed varint");
  }
  /** The next length-delimited field as a view. */
  view(): Uint8Array {
    const n = this.varint();
    const start = this.pos;
    if (n > this.end - start) throw new RangeError("data-plane message truncated");
    this.pos = start + n;
    return this.buf.subarray(start, start + n);
  }
  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_LEN) this.view();
    else if (wire === WIRE_I64) this.advance(8);
    else if (wire === WIRE_I32) this.advance(4);
    else throw new RangeError(`data-plane message has unknown wire type ${wire}`);
  }
  advance(n: number): void {
    if (n > this.end - this.pos) throw new RangeError("data-plane message truncated");
    this.pos += n;
  }
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.length);
}

// ---- SessionRequest ----

interface EncodedRequest {
  size: number;
  user?: Uint8Array;
  database?: Uint8Array;
  startup?: [Uint8Array, Uint8Array, number][];
}

function measureRequest(r: SessionRequest): EncodedRequest {
  const e: EncodedRequest = { size: 0 };
  let size = 0;
  if (r.sessionId) size += 1 + varintSize(r.sessionId);
  const op = OP_NUMBER[r.op] ?? 0;
  if (op) size += 1 + varintSize(op);
  if (r.user) {
    e.user = encoder.encode(r.user);
    size += 1 + varintSize(e.user.length) + e.user.length;
  }
  if (r.database) {
    e.database = encoder.encode(r.database);
    size += 1 + varintSize(e.database.length) + e.database.length;
  }
  if (r.startup) {
    for (const [k, v] of Object.entries(r.startup)) {
      const kb = encoder.encode(k);
      const vb = encoder.encode(v);
      const entry = 1 + varintSize(kb.length) + kb.length + 1 + varintSize(vb.length) + vb.length;
      (e.startup ??= []).push([kb, vb, entry]);
      size += 1 + varintSize(entry) + entry;
    }
  }
  if (r.payload?.length) size += 1 + varintSize(r.payload.length) + r.payload.length;
  if (r.acked) size += 1 + varintSize(r.acked);
  if (r.reason) size += 1 + varintSize(r.reason);
  if (r.replica) size += 2;
  if (r.clientPid) size += 1 + varintSize(r.clientPid);
  e.size = size;
  return e;
}

function writeRequest(o: Out, r: SessionRequest, e: EncodedRequest): void {
  if (r.sessionId) {
    o.tag(1, WIRE_VARINT);
    o.varint(r.sessionId);
  }
  const op = OP_NUMBER[r.op] ?? 0;
  if (op) {
    o.tag(2, WIRE_VARINT);
    o.varint(op);
  }
  if (e.user) o.bytes(3, e.user);
  if (e.database) o.bytes(4, e.database);
  if (e.startup) {
    for (const [kb, vb, entry] of e.startup) {
      o.tag(5, WIRE_LEN);
      o.varint(entry);
      o.bytes(1, kb);
      o.bytes(2, vb);
    }
  }
  if (r.payload?.length) o.bytes(6, r.payload);
  if (r.acked) {
    o.tag(7, WIRE_VARINT);
    o.varint(r.acked);
  }
  if (r.reason) {
    o.tag(8, WIRE_VARINT);
    o.varint(r.reason);
  }
  if (r.replica) {
    o.tag(9, WIRE_VARINT);
    o.varint(1);
  }
  if (r.clientPid) {
    o.tag(10, WIRE_VARINT);
    o.varint(r.clientPid);
  }
}

function readRequest(i: In): SessionRequest {
  const r: SessionRequest = {
    sessionId: 0,
    op: "SESSION_OP_UNSPECIFIED",
    user: "",
    database: "",
    startup: {},
    payload: EMPTY,
    acked: 0,
    reason: 0,
    replica: false,
    clientPid: 0,
  };
  while (i.pos < i.end) {
    const key = i.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1 && wire === WIRE_VARINT) r.sessionId = i.varint();
    else if (field === 2 && wire === WIRE_VARINT) r.op = OP_NAME[i.varint()] ?? r.op;
    else if (field === 3 && wire === WIRE_LEN) r.user = decoder.decode(i.view());
    else if (field === 4 && wire === WIRE_LEN) r.database = decoder.decode(i.view());
    else if (field === 5 && wire === WIRE_LEN) {
      const entry = i.view();
      const e = new In(entry);
      let k = "";
      let v = "";
      while (e.pos < e.end) {
        const ek = e.varint();
        if (ek === ((1 << 3) | WIRE_LEN)) k = decoder.decode(e.view());
        else if (ek === ((2 << 3) | WIRE_LEN)) v = decoder.decode(e.view());
        else e.skip(ek & 7);
      }
      r.startup[k] = v;
    } else if (field === 6 && wire === WIRE_LEN) r.payload = i.view();
    else if (field === 7 && wire === WIRE_VARINT) r.acked = i.varint();
    else if (field === 8 && wire === WIRE_VARINT) r.reason = i.varint();
    else if (field === 9 && wire === WIRE_VARINT) r.replica = i.varint() !== 0;
    else if (field === 10 && wire === WIRE_VARINT) r.clientPid = i.varint();
    else i.skip(wire);
  }
  return r;
}

/** Encodes a DataPlaneRequest (gRPC request serializer). */
export function encodeDataPlaneRequest(msg: DataPlaneRequest): Buffer {
  const parts = msg.requests.map(measureRequest);
  let size = 0;
  for (const p of parts) size += 1 + varintSize(p.size) + p.size;
  const o = new Out(size);
  for (let k = 0; k < parts.length; k++) {
    o.tag(1, WIRE_LEN);
    o.varint(parts[k].size);
    writeRequest(o, msg.requests[k], parts[k]);
  }
  return asBuffer(o.buf);
}

/**
 * The same bytes as a plain Uint8Array: grpc-js hands over a node Buffer, whose views are Buffers
 * too, and Buffer methods (indexOf, subarray) are far slower than Uint8Array's under Deno.
 */
function plain(buf: Uint8Array): Uint8Array {
  return buf.constructor === Uint8Array
    ? buf
    : new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/** Decodes a DataPlaneRequest; payloads are views of `buf`. */
export function decodeDataPlaneRequest(message: Uint8Array): DataPlaneRequest {
  const buf = plain(message);
  const i = new In(buf);
  const requests: SessionRequest[] = [];
  while (i.pos < i.end) {
    const key = i.varint();
    if (key === ((1 << 3) | WIRE_LEN)) {
      const n = i.varint();
      if (n > i.end - i.pos) throw new RangeError("data-plane message truncated");
      requests.push(readRequest(new In(buf, i.pos, i.pos + n)));
      i.pos += n;
    } else {
      i.skip(key & 7);
    }
  }
  return { requests };
}

// ---- SessionResponse ----

function responseSize(r: SessionResponse): number {
  let size = 0;
  if (r.sessionId) size += 1 + varintSize(r.sessionId);
  if (r.payload?.length) size += 1 + varintSize(r.payload.length) + r.payload.length;
  if (r.done) size += 2;
  if (r.reserved) size += 1 + varintSize(r.reserved);
  if (r.closed) size += 2;
  if (r.acked) size += 1 + varintSize(r.acked);
  if (r.flags) size += 1 + varintSize(r.flags);
  if (r.settled) size += 1 + varintSize(r.settled);
  return size;
}

/** Encodes a DataPlaneResponse (gRPC response serializer). */
export function encodeDataPlaneResponse(msg: DataPlaneResponse): Buffer {
  const rs = msg.responses;
  const sizes = new Array<number>(rs.length);
  let size = 0;
  for (let k = 0; k < rs.length; k++) {
    sizes[k] = responseSize(rs[k]);
    size += 1 + varintSize(sizes[k]) + sizes[k];
  }
  const o = new Out(size);
  for (let k = 0; k < rs.length; k++) {
    const r = rs[k];
    o.tag(1, WIRE_LEN);
    o.varint(sizes[k]);
    if (r.sessionId) {
      o.tag(1, WIRE_VARINT);
      o.varint(r.sessionId);
    }
    if (r.payload?.length) o.bytes(2, r.payload);
    if (r.done) {
      o.tag(3, WIRE_VARINT);
      o.varint(1);
    }
    if (r.reserved) {
      o.tag(4, WIRE_VARINT);
      o.varint(r.reserved);
    }
    if (r.closed) {
      o.tag(5, WIRE_VARINT);
      o.varint(1);
    }
    if (r.acked) {
      o.tag(6, WIRE_VARINT);
      o.varint(r.acked);
    }
    if (r.flags) {
      o.tag(7, WIRE_VARINT);
      o.varint(r.flags);
    }
    if (r.settled) {
      o.tag(8, WIRE_VARINT);
      o.varint(r.settled);
    }
  }
  return asBuffer(o.buf);
}

/** Decodes a DataPlaneResponse; payloads are views of `buf`. */
export function decodeDataPlaneResponse(message: Uint8Array): DataPlaneResponse {
  const buf = plain(message);
  const i = new In(buf);
  const responses: SessionResponse[] = [];
  while (i.pos < i.end) {
    const key = i.varint();
    if (key !== ((1 << 3) | WIRE_LEN)) {
      i.skip(key & 7);
      continue;
    }
    const n = i.varint();
    if (n > i.end - i.pos) throw new RangeError("data-plane message truncated");
    const e = new In(buf, i.pos, i.pos + n);
    i.pos += n;
    const r: SessionResponse = {
      sessionId: 0,
      payload: EMPTY,
      done: false,
      reserved: 0,
      closed: false,
      acked: 0,
      flags: 0,
      settled: 0,
    };
    while (e.pos < e.end) {
      const k = e.varint();
      const field = Math.floor(k / 8);
      const wire = k & 7;
      if (field === 1 && wire === WIRE_VARINT) r.sessionId = e.varint();
      else if (field === 2 && wire === WIRE_LEN) r.payload = e.view();
      else if (field === 3 && wire === WIRE_VARINT) r.done = e.varint() !== 0;
      else if (field === 4 && wire === WIRE_VARINT) r.reserved = e.varint();
      else if (field === 5 && wire === WIRE_VARINT) r.closed = e.varint() !== 0;
      else if (field === 6 && wire === WIRE_VARINT) r.acked = e.varint();
      else if (field === 7 && wire === WIRE_VARINT) r.flags = e.varint();
      else if (field === 8 && wire === WIRE_VARINT) r.settled = e.varint();
      else e.skip(wire);
    }
    responses.push(r);
  }
  return { responses };
}
