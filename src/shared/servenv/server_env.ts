import { Logger } from "../log/mod.ts";
import { Metrics } from "./metrics.ts";

type Hook = () => void | Promise<void>;

/**
 * What every server component has: a logger, meters, an HTTP port with `/live`, `/ready`,
 * `/metrics` and a status page, and a clean shutdown on SIGTERM/SIGINT that runs the registered
 * hooks in reverse order (deregister, drain, stop).
 */
export class ServerEnv {
  readonly component: string;
  readonly logger: Logger;
  readonly metrics: Metrics;
  #ready: () => boolean = () => true;
  #status: () => unknown = () => ({});
  readonly #hooks: Hook[] = [];
  #http?: Deno.HttpServer;
  #shuttingDown?: Promise<void>;
  #signalHandler?: () => void;

  constructor(component: string, logger: Logger) {
    this.component = component;
    this.logger = logger;
    this.metrics = new Metrics(component);
  }

  /** Sets what `/ready` reports. */
  setReadiness(fn: () => boolean): void {
    this.#ready = fn;
  }

  /** Sets what the status page (`/` and `/status`) shows, as JSON. */
  setStatus(fn: () => unknown): void {
    this.#status = fn;
  }

  /** Registers work for shutdown; hooks run last-registered first. */
  onShutdown(hook: Hook): void {
    this.#hooks.push(hook);
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown !== undefined;
  }

  /** Starts the HTTP server; resolves once it listens. */
  serveHttp(hostname: string, port: number): Promise<Deno.NetAddr> {
    return new Promise((resolve, reject) => {
      try {
        this.#http = Deno.serve({
          hostname,
          port,
          onListen: (addr) => resolve(addr as Deno.NetAddr),
          onError: (e) => {
            this.logger.error("http handler failed", { error: e });
            return new Response("internal error\n", { status: 500 });
          },
        }, (req) => this.#handle(req));
      } catch (e) {
        reject(new Error(`Cannot listen on HTTP ${hostname}:${port}: ${(e as Error).message}`));
      }
    });
  }

  async #handle(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    switch (path) {
      case "/live":
        return new Response("ok\n");
      case "/ready": {
        const ok = !this.shuttingDown && this.#ready();
        return new Response(ok ? "ok\n" : "not ready\n", { status: ok ? 200 : 503 });
      }
      case "/metrics":
        return new Response(await this.metrics.render(), {
          headers: { "content-type": "text/plain; version=0.0.4" },
        });
      case "/status":
        return Response.json(this.#status());
      case "/": {
        const body = escapeHtml(JSON.stringify(this.#status(), null, 2));
        return new Response(
          `<!doctype html><title>${this.component}</title><h1>${this.component}</h1>` +
            `<p><a href="/metrics">metrics</a> · <a href="/ready">ready</a></p><pre>${body}</pre>`,
          { headers: { "content-type": "text/html; charset=utf-8" } },
        );
      }
      default:
        return new Response("not found\n", { status: 404 });
    }
  }

  /** Runs `shutdown()` then exits on SIGTERM or SIGINT. */
  installSignalHandlers(): void {
    this.#signalHandler = () => {
      this.shutdown().finally(() => Deno.exit(0));
    };
    Deno.addSignalListener("SIGTERM", this.#signalHandler);
    Deno.addSignalListener("SIGINT", this.#signalHandler);
  }

  /** Runs the shutdown hooks once (later calls return the same promise). */
  shutdown(): Promise<void> {
    this.#shuttingDown ??= this.#runShutdown();
    return this.#shuttingDown;
  }

  async #runShutdown(): Promise<void> {
    this.logger.info("shutting down");
    for (const hook of this.#hooks.toReversed()) {
      try {
        await hook();
      } catch (e) {
        this.logger.warn("shutdown step failed", { error: e });
      }
    }
    await this.#http?.shutdown();
    if (this.#signalHandler) {
      Deno.removeSignalListener("SIGTERM", this.#signalHandler);
      Deno.removeSignalListener("SIGINT", this.#signalHandler);
    }
    this.logger.info("stopped");
  }
}

function escapeHtml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}
