/**
 * A lean gRPC transport for one bidirectional streaming method: HTTP/2 with prior knowledge over
 * TCP (h2c) on Deno's own sockets, or over mutual TLS (`listenMutualTls()`, `tls` on the client),
 * built from typed arrays for latency. It carries the data plane (`MultiPooler.DataPlane`) while
 * grpc-js keeps every other RPC; any gRPC client or server can sit at the other end.
 *
 * Messages are bytes: encode and decode them with `dataplane_codec.ts`. See README.md.
 *
 * ```ts ignore
 * import { connectBidi, serveBidi } from "./mod.ts";
 *
 * const path = "/multigres.multipooler.MultiPooler/DataPlane";
 * const server = serveBidi(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
 *   path,
 *   onStream(stream) {
 *     stream.onMessage = (msg) => stream.write(msg); // msg is borrowed: valid until return
 *     stream.onEnd = () => stream.end(); // trailers with grpc-status 0
 *   },
 * });
 * const stream = await connectBidi({
 *   hostname: "127.0.0.1",
 *   port: (server.addr as Deno.NetAddr).port,
 *   path,
 *   onMessage: (msg) => console.log(msg.length),
 * });
 * stream.write(new Uint8Array(64));
 * stream.end();
 * console.log(await stream.closed); // { code: 0, message: "" }
 * await server.close();
 * ```
 *
 * @module
 */

export * from "./constants.ts";
export * from "./frame_header.ts";
export * from "./frame_reader.ts";
export * from "./frame_writer.ts";
export * from "./h2_error.ts";
export * from "./huffman.ts";
export * from "./hpack_decoder.ts";
export * from "./hpack_encoder.ts";
export * from "./message_reader.ts";
export * from "./grpc_status.ts";
export * from "./stream.ts";
export * from "./connection.ts";
export * from "./server.ts";
export * from "./client.ts";
export * from "./mutual_tls.ts";
