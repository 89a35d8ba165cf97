/**
 * {@linkcode onFrame}: what a connection does with each frame it cuts (header blocks are in
 * `_receive_headers.ts`). Runs synchronously in the read loop; a connection error is thrown as
 * an {@linkcode H2Error}, a stream error closes just that stream.
 *
 * @module
 */

import {
  DEFAULT_MAX_FRAME_SIZE,
  ErrorCode,
  errorCodeName,
  FrameFlag,
  FrameType,
  MAX_FRAME_SIZE_LIMIT,
  MAX_WINDOW_SIZE,
  Setting,
} from "./constants.ts";
import { getUint32 } from "./frame_header.ts";
import { GrpcStatus, type StreamStatus } from "./grpc_status.ts";
import { frameSizeError, H2Error, protocolError } from "./h2_error.ts";
import type { ConnState } from "./_conn_state.ts";
import { onContinuation, onHeaders } from "./_receive_headers.ts";
import {
  drain,
  failWith,
  finishStream,
  remoteEnd,
  resetStream,
  resumeBlocked,
} from "./_stream_ops.ts";

const decoder = new TextDecoder();

/** Handles the frame the reader just cut. */
export function onFrame(c: ConnState): void {
  const r = c.reader;
  const type = r.type;
  if (c.headerStream !== 0 && type !== FrameType.CONTINUATION) {
    throw protocolError("expected a CONTINUATION frame");
  }
  if (!c.settingsSeen) {
    if (type !== FrameType.SETTINGS || (r.flags & FrameFlag.ACK) !== 0) {
      throw protocolError("the first frame must be SETTINGS");
    }
    c.settingsSeen = true;
  }
  switch (type) {
    case FrameType.DATA:
      return onData(c);
    case FrameType.HEADERS:
      return onHeaders(c);
    case FrameType.CONTINUATION:
      return onContinuation(c);
    case FrameType.SETTINGS:
      return onSettings(c);
    case FrameType.WINDOW_UPDATE:
      return onWindowUpdate(c);
    case FrameType.PING:
      return onPing(c);
    case FrameType.RST_STREAM:
      return onRstStream(c);
    case FrameType.GOAWAY:
      return onGoaway(c);
    case FrameType.PRIORITY:
      if (r.streamId === 0) throw protocolError("PRIORITY on stream 0");
      if (r.length !== 5) throw frameSizeError("PRIORITY");
      return;
    case FrameType.PUSH_PROMISE:
      throw protocolError("PUSH_PROMISE is not allowed here");
    default:
      return; // unknown frame types are ignored (RFC 9113 §4.1)
  }
}

function onData(c: ConnState): void {
  const r = c.reader;
  const id = r.streamId;
  if (id === 0) throw protocolError("DATA on stream 0");
  const length = r.length; // flow control counts the padding too
  c.connRecvAvail -= length;
  if (c.connRecvAvail < 0) {
    throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, "the peer overran the connection window");
  }
  // We consume on receipt (messages are delivered right here), so the window reopens at once.
  c.connRecvUnacked += length;
  if (c.connRecvUnacked >= c.connWindow >> 1) {
    c.out.w.windowUpdate(0, c.connRecvUnacked);
    c.connRecvAvail += c.connRecvUnacked;
    c.connRecvUnacked = 0;
    c.out.schedule();
  }
  const buf = r.buffer;
  let start = r.payloadStart;
  let end = r.payloadEnd;
  if (r.flags & FrameFlag.PADDED) {
    if (length < 1) throw frameSizeError("padded DATA");
    const pad = buf[start++];
    if (pad > end - start) throw protocolError("padding exceeds the DATA payload");
    end -= pad;
  }
  const s = c.streams.get(id);
  if (s === undefined || s.remoteEnded) {
    c.checkKnown(id);
    return; // late data of a stream we closed is dropped
  }
  s.recvAvail -= length;
  if (s.recvAvail < 0) {
    const message = "the peer overran the stream window";
    resetStream(c, s, ErrorCode.FLOW_CONTROL_ERROR, { code: GrpcStatus.INTERNAL, message });
    return;
  }
  if (end > start) {
    try {
      s.reader.push(buf, start, end);
    } catch (e) {
      failWith(c, s, e, "onMessage");
      return;
    }
  }
  if (s.isClosed) return;
  if (r.flags & FrameFlag.END_STREAM) {
    remoteEnd(c, s);
    return;
  }
  s.recvUnacked += length;
  if (s.recvUnacked >= c.streamWindow >> 1) {
    c.out.w.windowUpdate(id, s.recvUnacked);
    s.recvAvail += s.recvUnacked;
    s.recvUnacked = 0;
    c.out.schedule();
  }
}

function onSettings(c: ConnState): void {
  const r = c.reader;
  if (r.streamId !== 0) throw protocolError("SETTINGS on a stream");
  if (r.flags & FrameFlag.ACK) {
    if (r.length !== 0) throw frameSizeError("SETTINGS ACK");
    return;
  }
  if (r.length % 6 !== 0) throw frameSizeError("SETTINGS");
  const buf = r.buffer;
  for (let at = r.payloadStart; at < r.payloadEnd; at += 6) {
    const id = (buf[at] << 8) | buf[at + 1];
    const value = getUint32(buf, at + 2);
    switch (id) {
      case Setting.HEADER_TABLE_SIZE:
        if (value < c.encoderTableMax) {
          // Our encoder never indexes, but the peer's decoder expects to hear of the new size.
          c.encoderTableMax = value;
          c.tableSizeUpdate = value;
        }
        break;
      case Setting.ENABLE_PUSH:
        if (value > 1) throw protocolError("ENABLE_PUSH above 1");
        break;
      case Setting.MAX_CONCURRENT_STREAMS:
        c.peerMaxStreams = value;
        break;
      case Setting.INITIAL_WINDOW_SIZE: {
        if (value > MAX_WINDOW_SIZE) {
          throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE above 2^31-1");
        }
        const delta = value - c.peerInitialWindow;
        c.peerInitialWindow = value;
        for (const s of c.streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > MAX_WINDOW_SIZE) {
            throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, "a stream window overflowed");
          }
        }
        if (delta > 0) resumeBlocked(c);
        break;
      }
      case Setting.MAX_FRAME_SIZE:
        if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_FRAME_SIZE_LIMIT) {
          throw protocolError(`MAX_FRAME_SIZE ${value} out of range`);
        }
        c.peerMaxFrame = value;
        break;
      default:
        break; // MAX_HEADER_LIST_SIZE is advisory; unknown settings are ignored
    }
  }
  c.out.w.settingsAck();
  c.out.schedule();
}

function onWindowUpdate(c: ConnState): void {
  const r = c.reader;
  if (r.length !== 4) throw frameSizeError("WINDOW_UPDATE");
  const increment = getUint32(r.buffer, r.payloadStart) & 0x7fffffff;
  const id = r.streamId;
  if (id === 0) {
    if (increment === 0) throw protocolError("WINDOW_UPDATE of 0");
    c.sendWindow += increment;
    if (c.sendWindow > MAX_WINDOW_SIZE) {
      throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, "the connection window overflowed");
    }
    resumeBlocked(c);
    return;
  }
  const s = c.streams.get(id);
  if (s === undefined) {
    c.checkKnown(id);
    return;
  }
  if (increment === 0) {
    const message = "WINDOW_UPDATE of 0";
    resetStream(c, s, ErrorCode.PROTOCOL_ERROR, { code: GrpcStatus.INTERNAL, message });
    return;
  }
  s.sendWindow += increment;
  if (s.sendWindow > MAX_WINDOW_SIZE) {
    const message = "the stream window overflowed";
    resetStream(c, s, ErrorCode.FLOW_CONTROL_ERROR, { code: GrpcStatus.INTERNAL, message });
    return;
  }
  if (s.blocked) drain(c, s);
}

function onPing(c: ConnState): void {
  const r = c.reader;
  if (r.streamId !== 0) throw protocolError("PING on a stream");
  if (r.length !== 8) throw frameSizeError("PING");
  if ((r.flags & FrameFlag.ACK) === 0) {
    c.out.w.ping(true, r.payload);
    c.out.schedule();
    return;
  }
  const ping = c.pings.shift();
  ping?.resolve(performance.now() - ping.t0);
}

function onRstStream(c: ConnState): void {
  const r = c.reader;
  if (r.length !== 4) throw frameSizeError("RST_STREAM");
  const id = r.streamId;
  if (id === 0) throw protocolError("RST_STREAM on stream 0");
  const s = c.streams.get(id);
  if (s === undefined) {
    c.checkKnown(id);
    return;
  }
  const code = getUint32(r.buffer, r.payloadStart);
  let status: StreamStatus;
  if (code === ErrorCode.CANCEL) {
    status = { code: GrpcStatus.CANCELLED, message: "the peer cancelled the stream" };
  } else if (code === ErrorCode.REFUSED_STREAM) {
    status = { code: GrpcStatus.UNAVAILABLE, message: "the peer refused the stream" };
  } else {
    status = {
      code: code === ErrorCode.ENHANCE_YOUR_CALM
        ? GrpcStatus.RESOURCE_EXHAUSTED
        : GrpcStatus.INTERNAL,
      message: `the peer reset the stream with ${errorCodeName(code)}`,
    };
  }
  s.localEnded = s.remoteEnded = true; // nothing more may be sent on a reset stream
  finishStream(c, s, status);
}

function onGoaway(c: ConnState): void {
  const r = c.reader;
  if (r.streamId !== 0) throw protocolError("GOAWAY on a stream");
  if (r.length < 8) throw frameSizeError("GOAWAY");
  const buf = r.buffer;
  const last = getUint32(buf, r.payloadStart) & 0x7fffffff;
  const code = getUint32(buf, r.payloadStart + 4);
  const debug = decoder.decode(buf.subarray(r.payloadStart + 8, r.payloadEnd));
  c.goawayReceived = true;
  const why = `GOAWAY ${errorCodeName(code)}${debug ? `: ${debug}` : ""}`;
  if (code !== ErrorCode.NO_ERROR) {
    c.hooks.destroy(new Error(`the peer closed the connection (${why})`), GrpcStatus.UNAVAILABLE);
    return;
  }
  if (!c.isServer) {
    // Streams above `last` were never processed: safe to retry elsewhere.
    for (const s of [...c.streams.values()]) {
      if (s.id <= last) continue;
      const message = `the server is going away (${why}); the stream was not processed`;
      s.localEnded = s.remoteEnded = true;
      finishStream(c, s, { code: GrpcStatus.UNAVAILABLE, message });
    }
    if (c.streams.size === 0) c.hooks.close();
  }
}
