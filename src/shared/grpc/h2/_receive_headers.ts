/**
 * Header blocks received: HEADERS and CONTINUATION frames assembled, decoded with HPACK and
 * acted on (a server accepts or refuses a stream; a client checks the response and reads the
 * status from the trailers).
 *
 * @module
 */

import { ErrorCode, FrameFlag } from "./constants.ts";
import { decodeGrpcMessage, GrpcStatus, statusFromHttp } from "./grpc_status.ts";
import type { StreamStatus } from "./grpc_status.ts";
import { frameSizeError, H2Error, protocolError } from "./h2_error.ts";
import type { HeaderList } from "./hpack_decoder.ts";
import type { ConnState } from "./_conn_state.ts";
import { headerValue, httpStatusBlock, isGrpcContentType, trailersBlock } from "./_headers.ts";
import { failWith, fire, remoteEnd, resetStream, sendHeaders } from "./_stream_ops.ts";

/** Largest header block accepted (HEADERS plus CONTINUATIONs). */
const MAX_HEADER_BLOCK = 256 * 1024;

/** A HEADERS frame: decoded now, or kept until its last CONTINUATION. */
export function onHeaders(c: ConnState): void {
  const r = c.reader;
  const id = r.streamId;
  if (id === 0) throw protocolError("HEADERS on stream 0");
  const buf = r.buffer;
  let start = r.payloadStart;
  let end = r.payloadEnd;
  if (r.flags & FrameFlag.PADDED) {
    if (end - start < 1) throw frameSizeError("padded HEADERS");
    const pad = buf[start++];
    if (pad > end - start) throw protocolError("padding exceeds the HEADERS payload");
    end -= pad;
  }
  if (r.flags & FrameFlag.PRIORITY) {
    if (end - start < 5) throw frameSizeError("HEADERS with priority");
    start += 5;
  }
  if (r.flags & FrameFlag.END_HEADERS) {
    onHeaderBlock(c, id, r.flags, buf.subarray(start, end));
    return;
  }
  c.headerStream = id;
  c.headerFlags = r.flags;
  c.headerLen = 0;
  append(c, buf.subarray(start, end));
}

/** A CONTINUATION frame of the header block being assembled. */
export function onContinuation(c: ConnState): void {
  const r = c.reader;
  if (c.headerStream === 0 || r.streamId !== c.headerStream) {
    throw protocolError("unexpected CONTINUATION frame");
  }
  append(c, r.payload);
  if ((r.flags & FrameFlag.END_HEADERS) === 0) return;
  const id = c.headerStream;
  c.headerStream = 0;
  onHeaderBlock(c, id, c.headerFlags, c.headerBuf.subarray(0, c.headerLen));
}

function append(c: ConnState, fragment: Uint8Array): void {
  const need = c.headerLen + fragment.length;
  if (need > MAX_HEADER_BLOCK) {
    throw new H2Error(ErrorCode.ENHANCE_YOUR_CALM, `header block over ${MAX_HEADER_BLOCK} bytes`);
  }
  if (need > c.headerBuf.length) {
    const next = new Uint8Array(Math.max(need, c.headerBuf.length * 2, 1024));
    next.set(c.headerBuf.subarray(0, c.headerLen));
    c.headerBuf = next;
  }
  c.headerBuf.set(fragment, c.headerLen);
  c.headerLen = need;
}

function onHeaderBlock(c: ConnState, id: number, flags: number, block: Uint8Array): void {
  // Decode first, always: the HPACK table must see every block, even of refused streams.
  const headers = c.decoder.decode(block);
  const endStream = (flags & FrameFlag.END_STREAM) !== 0;
  const s = c.streams.get(id);
  if (c.isServer) {
    if (s === undefined) {
      if ((id & 1) === 0) throw protocolError(`client opened an even stream id ${id}`);
      if (id <= c.lastPeerStreamId) return; // trailers of a stream we closed
      c.lastPeerStreamId = id;
      acceptStream(c, id, headers, endStream);
      return;
    }
    if (!endStream) {
      const message = "request trailers without END_STREAM";
      resetStream(c, s, ErrorCode.PROTOCOL_ERROR, { code: GrpcStatus.INTERNAL, message });
      return;
    }
    remoteEnd(c, s);
    return;
  }
  if (s === undefined) {
    c.checkKnown(id);
    return;
  }
  if (!s.headersDone) {
    s.headersDone = true;
    s.headers = headers;
    if (endStream) s.remoteEnded = true;
    const status = headerValue(headers, ":status");
    if (status !== "200") {
      const message = `received HTTP status ${status ?? "(none)"}`;
      resetStream(c, s, ErrorCode.CANCEL, { code: statusFromHttp(Number(status)), message });
      return;
    }
    const type = headerValue(headers, "content-type");
    if (!isGrpcContentType(type)) {
      const message = `invalid gRPC content-type ${JSON.stringify(type ?? "")}`;
      resetStream(c, s, ErrorCode.CANCEL, { code: GrpcStatus.UNKNOWN, message });
      return;
    }
    if (!endStream) return;
    // A trailers-only response: the status is in these headers.
  } else if (!endStream) {
    const message = "response trailers without END_STREAM";
    resetStream(c, s, ErrorCode.PROTOCOL_ERROR, { code: GrpcStatus.INTERNAL, message });
    return;
  }
  s.remoteEnded = true;
  const code = headerValue(headers, "grpc-status");
  let status: StreamStatus;
  if (code === undefined || !/^\d+$/.test(code)) {
    status = { code: GrpcStatus.UNKNOWN, message: "the server sent no valid grpc-status" };
  } else if (code === "0" && s.reader.partial) {
    status = { code: GrpcStatus.INTERNAL, message: "the stream ended in the middle of a message" };
  } else {
    const message = decodeGrpcMessage(headerValue(headers, "grpc-message") ?? "");
    status = { code: Number(code), message };
  }
  resetStream(c, s, ErrorCode.NO_ERROR, status); // RST only when we had not ended: we are done
}

/** Server: a client opened stream `id`. */
function acceptStream(c: ConnState, id: number, headers: HeaderList, endStream: boolean): void {
  if (c.closing || c.streams.size >= c.maxStreams) {
    c.out.w.rstStream(id, ErrorCode.REFUSED_STREAM);
    c.out.schedule();
    return;
  }
  const path = headerValue(headers, ":path") ?? "";
  let refusal: Uint8Array | null = null;
  if (headerValue(headers, ":method") !== "POST") refusal = httpStatusBlock(405);
  else if (!isGrpcContentType(headerValue(headers, "content-type"))) {
    refusal = httpStatusBlock(415);
  } else if (path !== c.handler!.path) {
    refusal = trailersBlock(GrpcStatus.UNIMPLEMENTED, `Method not found: ${path}`, true);
  }
  if (refusal !== null) {
    sendHeaders(c, id, refusal, true);
    if (!endStream) c.out.w.rstStream(id, ErrorCode.NO_ERROR);
    return;
  }
  const s = c.newStream(id, path, headers);
  s.remoteEnded = endStream;
  try {
    c.handler!.onStream(s.stream);
  } catch (e) {
    failWith(c, s, e, "onStream");
    return;
  }
  if (endStream) fire(c, s, s.stream.onEnd);
}
