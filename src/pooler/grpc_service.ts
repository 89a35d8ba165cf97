import {
  type DataPlaneRequest,
  type DataPlaneResponse,
  grpc,
  type HealthStatus,
  type PoolerRecord,
  unary,
} from "../shared/grpc/mod.ts";
import type { Logger } from "../shared/log/mod.ts";
import { decodeDataPlaneRequest, encodeDataPlaneResponse } from "../shared/grpc/dataplane_codec.ts";
import { type BidiServer, type H2Listener, serveBidi } from "../shared/grpc/h2/mod.ts";
import {
  type ChangeMetadataRequest,
  DATA_PLANE_PATH,
  type SessionResponse,
  type TwoPhaseDecision,
} from "../shared/grpc/types.ts";
import { Batcher } from "./dataplane/batcher.ts";
import { type PoolMode, SessionTable } from "./dataplane/session_table.ts";
import type { Pooler } from "./pooler.ts";
import { SessionPids } from "./dataplane/session_pids.ts";

/** The data-plane streams a pooler serves, over grpc-js and over the lean h2 server. */
export class DataPlaneStreams {
  readonly #tables = new Set<SessionTable>();
  /** Which backend serves which client session, for every stream. */
  readonly #pids = new SessionPids();
  readonly #pooler: Pooler;
  readonly #logger: Logger;
  readonly #mode: PoolMode;

  constructor(pooler: Pooler, logger: Logger, mode: PoolMode) {
    this.#pooler = pooler;
    this.#logger = logger;
    this.#mode = mode;
    pooler.sessionCount = () => {
      let n = 0;
      for (const t of this.#tables) n += t.size;
      return n;
    };
  }

  /**
   * A new stream: `send` writes one response message (false: wait for `drained()`). Returns
   * what the transport calls on a request message, on drain, and once the stream is over.
   */
  open(send: (responses: SessionResponse[]) => boolean): DataPlaneStream {
    const batcher = new Batcher(send);
    const table = new SessionTable({
      pool: this.#pooler.pool,
      sink: batcher,
      canServe: (replica) => this.#pooler.canServe(replica),
      logger: this.#logger,
      mode: this.#mode,
      pids: this.#pids,
    });
    this.#tables.add(table);
    return {
      request: (msg) => {
        for (const req of msg.requests) table.handle(req);
      },
      drained: () => batcher.drained(),
      finish: () => {
        if (!this.#tables.delete(table)) return;
        table.closeAll();
        batcher.drained();
      },
    };
  }

  /** Serves DataPlane on the lean h2 transport (grpc/h2) from `listener` (TCP or mutual TLS). */
  serveH2(listener: H2Listener): BidiServer {
    return serveBidi(listener, {
      path: DATA_PLANE_PATH,
      // Request payloads are handled after the message callback returns: keep them.
      retainMessages: true,
      onStream: (stream) => {
        let ended = false;
        // After the stream ended, answers of sessions still settling have nobody to go to.
        const s = this.open((responses) =>
          ended || stream.isClosed || stream.write(encodeDataPlaneResponse({ responses }))
        );
        stream.onDrain = s.drained;
        stream.onMessage = (msg) => s.request(decodeDataPlaneRequest(msg));
        stream.onEnd = () => {
          s.finish();
          ended = true;
          stream.end();
        };
        stream.onClose = s.finish;
      },
    });
  }
}

/** One data-plane stream's handlers (see DataPlaneStreams.open). */
export interface DataPlaneStream {
  request(msg: DataPlaneRequest): void;
  drained(): void;
  finish(): void;
}

/** The MultiPooler gRPC service: decodes requests, calls the Pooler, maps errors. */
export function poolerService(
  pooler: Pooler,
  streams: DataPlaneStreams,
): grpc.UntypedServiceImplementation {
  return {
    DataPlane(call: grpc.ServerDuplexStream<DataPlaneRequest, DataPlaneResponse>) {
      const s = streams.open((responses) => call.write({ responses }));
      call.on("drain", s.drained);
      call.on("data", s.request);
      call.on("end", () => {
        s.finish();
        call.end();
      });
      call.on("cancelled", s.finish);
      call.on("error", s.finish);
      call.on("close", s.finish);
    },

    HealthStream(call: grpc.ServerWritableStream<unknown, HealthStatus>) {
      call.write(pooler.health());
      const off = pooler.onHealth((h) => call.write(h));
      const stop = () => off();
      call.on("cancelled", stop);
      call.on("close", stop);
      call.on("error", stop);
    },

    GetAuthCredentials: unary((req: { user: string; database: string }) =>
      pooler.getAuthCredentials(req.user, req.database)
    ),
    GetMetadata: unary(() => pooler.getMetadata()),
    EnsureRole: unary(async (req: { user: string }) => {
      await pooler.ensureRole(req.user);
      return {};
    }),
    DecideTwoPhase: unary(
      async (req: { gid: string; decision: TwoPhaseDecision; participants: string[] }) => ({
        decision: await pooler.decideTwoPhase(req.gid, req.decision, req.participants ?? []),
      }),
    ),
    ListTwoPhaseDecisions: unary(async (req: { minAgeSeconds: number }) => ({
      decisions: await pooler.listTwoPhaseDecisions(req.minAgeSeconds || 0),
    })),
    ForgetTwoPhase: unary(async (req: { gids: string[] }) => {
      await pooler.forgetTwoPhase(req.gids ?? []);
      return {};
    }),
    ListPrepared: unary(async () => ({ prepared: await pooler.listPrepared() })),
    FinishPrepared: unary(async (req: { gid: string; database: string; commit: boolean }) => ({
      finished: await pooler.finishPrepared(req.gid, req.database, !!req.commit),
    })),
    ChangeMetadata: unary(async (req: ChangeMetadataRequest) => {
      await pooler.changeMetadata(req);
      return {};
    }),
    AppointPrimary: unary(async (req: { rule: Parameters<Pooler["appointPrimary"]>[0] }) => ({
      rule: await pooler.appointPrimary(req.rule),
    })),
    Status: unary(() => Promise.resolve(pooler.status())),
    Recruit: unary((req: { term: number }) => pooler.recruit(req.term)),
    Promote: unary(async (req: { term: number; standbys: string[]; n: number }) => ({
      lsn: await pooler.promote(req.term, req.standbys ?? [], req.n || 1),
    })),
    Demote: unary(async (req: { drainMs: number }) => ({
      lsn: await pooler.demote(req.drainMs || 5000),
    })),
    Repoint: unary(async (req: { term: number; primary: PoolerRecord }) => {
      await pooler.repoint(req.term, req.primary);
      return {};
    }),
  };
}
