/**
 * What happens to a stream from our side: writing messages within the flow-control windows,
 * ending, failing, resetting and closing it.
 *
 * @module
 */

import { ErrorCode } from "./constants.ts";
import { GrpcError, GrpcStatus, type StreamStatus } from "./grpc_status.ts";
import { encodeHeaderBlock } from "./hpack_encoder.ts";
import type { ConnState } from "./_conn_state.ts";
import { RESPONSE_BLOCK, trailersBlock } from "./_headers.ts";
import type { StreamState } from "./_stream_state.ts";

/** Queues a header block (HEADERS + CONTINUATIONs), with any table size update we owe. */
export function sendHeaders(c: ConnState, id: number, block: Uint8Array, end: boolean): void {
  if (c.tableSizeUpdate >= 0) {
    const update = encodeHeaderBlock([], { tableSizeUpdate: c.tableSizeUpdate });
    const joined = new Uint8Array(update.length + block.length);
    joined.set(update);
    joined.set(block, update.length);
    block = joined;
    c.tableSizeUpdate = -1;
  }
  c.out.w.headers(id, block, end, c.peerMaxFrame);
  c.out.schedule();
}

/**
 * Sends one message: straight into the outbox when the windows allow and nothing waits before
 * it, else through the stream's queue. Returns `false` when something waits for window or the
 * stream is closed.
 */
export function writeMessage(c: ConnState, s: StreamState, msg: Uint8Array): boolean {
  if (s.ending) throw new Error("write() after end()");
  if (s.isClosed || c.dead) return false;
  if (c.isServer && !s.headersDone) {
    s.headersDone = true;
    sendHeaders(c, s.id, RESPONSE_BLOCK, false);
  }
  const total = 5 + msg.length;
  if (s.queue.length === 0 && total <= c.sendWindow && total <= s.sendWindow) {
    c.out.w.message(s.id, msg, c.peerMaxFrame);
    c.sendWindow -= total;
    s.sendWindow -= total;
    c.out.schedule();
    return true;
  }
  s.queue.pushMessage(msg);
  drain(c, s);
  return s.queue.length === 0;
}

/** Sends what the windows allow of a stream's queue; sends its end once the queue is empty. */
export function drain(c: ConnState, s: StreamState): void {
  const q = s.queue;
  const w = c.out.w;
  while (q.length > 0) {
    const n = Math.min(c.sendWindow, s.sendWindow, q.length);
    if (n <= 0) break;
    w.data(s.id, q.peek(n), c.peerMaxFrame);
    q.consume(n);
    c.sendWindow -= n;
    s.sendWindow -= n;
  }
  c.out.schedule();
  if (q.length > 0) {
    if (!s.blocked) {
      s.blocked = true;
      c.blocked.push(s);
    }
    return;
  }
  const wasBlocked = s.blocked;
  if (wasBlocked) unblock(c, s);
  if (s.ending && !s.localEnded) sendEnd(c, s);
  else if (wasBlocked) fire(c, s, s.stream.onDrain);
}

/** More window: drains blocked streams in the order they blocked. */
export function resumeBlocked(c: ConnState): void {
  for (const s of [...c.blocked]) {
    if (c.sendWindow <= 0) return;
    if (!s.isClosed) drain(c, s);
  }
}

function unblock(c: ConnState, s: StreamState): void {
  s.blocked = false;
  c.blocked = c.blocked.filter((b) => b !== s);
}

/** `stream.end()`: our side ends after the queued messages. */
export function endStream(c: ConnState, s: StreamState, code: number, message: string): void {
  if (s.ending || s.isClosed) return;
  s.ending = true;
  s.endCode = code;
  s.endMessage = message;
  if (s.queue.length === 0) sendEnd(c, s);
}

/** END_STREAM (client), or the trailers (server), which close the stream with `status`. */
export function sendEnd(c: ConnState, s: StreamState, status?: StreamStatus): void {
  s.localEnded = true;
  if (!c.isServer) {
    c.out.w.endStream(s.id);
    c.out.schedule();
    return;
  }
  sendHeaders(c, s.id, trailersBlock(s.endCode, s.endMessage, !s.headersDone), true);
  s.headersDone = true;
  if (!s.remoteEnded) c.out.w.rstStream(s.id, ErrorCode.NO_ERROR); // the client may stop sending
  finishStream(c, s, status ?? { code: s.endCode, message: s.endMessage });
}

/** `stream.cancel()`: RST_STREAM CANCEL, closed as CANCELLED. */
export function cancelStream(c: ConnState, s: StreamState, message: string): void {
  resetStream(c, s, ErrorCode.CANCEL, { code: GrpcStatus.CANCELLED, message });
}

/**
 * Ends a stream on an error found here: a server sends `status` in the trailers (dropping
 * queued messages), a client resets the stream.
 */
export function failStream(c: ConnState, s: StreamState, status: StreamStatus): void {
  if (s.isClosed) return;
  if (!c.isServer || s.localEnded) {
    resetStream(c, s, ErrorCode.CANCEL, status);
    return;
  }
  s.queue.consume(s.queue.length);
  s.ending = true;
  s.endCode = status.code;
  s.endMessage = status.message;
  sendEnd(c, s, status);
}

/** Fails a stream because of an exception: a GrpcError keeps its code, others are INTERNAL. */
export function failWith(c: ConnState, s: StreamState, e: unknown, where: string): void {
  if (e instanceof GrpcError) {
    failStream(c, s, { code: e.code, message: e.message, cause: e });
    return;
  }
  const text = e instanceof Error ? e.message : String(e);
  failStream(c, s, { code: GrpcStatus.INTERNAL, message: `${where} threw: ${text}`, cause: e });
}

/** Closes a stream with `status`, sending RST_STREAM `h2code` unless both sides had ended. */
export function resetStream(
  c: ConnState,
  s: StreamState,
  h2code: number,
  status: StreamStatus,
): void {
  if (s.isClosed) return;
  if (!(s.localEnded && s.remoteEnded) && !c.dead) {
    c.out.w.rstStream(s.id, h2code);
    c.out.schedule();
  }
  s.localEnded = s.remoteEnded = true;
  finishStream(c, s, status);
}

/** The peer sent END_STREAM on DATA. */
export function remoteEnd(c: ConnState, s: StreamState): void {
  s.remoteEnded = true;
  if (c.isServer) {
    if (s.reader.partial) {
      const message = "the client ended the stream in the middle of a message";
      failStream(c, s, { code: GrpcStatus.INTERNAL, message });
      return;
    }
    fire(c, s, s.stream.onEnd);
    return;
  }
  // A server ends with trailers (HEADERS); END_STREAM on DATA leaves no status.
  const message = "the server ended the stream without trailers";
  resetStream(c, s, ErrorCode.NO_ERROR, { code: GrpcStatus.UNKNOWN, message });
}

/** Forgets a closed stream, settles `closed` and fires `onClose` (once). */
export function finishStream(c: ConnState, s: StreamState, status: StreamStatus): void {
  if (s.isClosed) return;
  s.queue.consume(s.queue.length);
  if (s.blocked) unblock(c, s);
  c.streams.delete(s.id);
  s.settle(status);
  const onClose = s.stream.onClose;
  if (onClose !== null) {
    try {
      onClose(status);
    } catch (e) {
      reportError(e); // a bug in the handler: an uncaught exception, not a silent one
    }
  }
  if (c.onStreamClosed !== null) c.onStreamClosed(s.stream);
}

/** Calls a stream callback; an exception fails the stream. */
export function fire(c: ConnState, s: StreamState, fn: (() => void) | null): void {
  if (fn === null || s.isClosed) return;
  try {
    fn();
  } catch (e) {
    failWith(c, s, e, "a stream callback");
  }
}
