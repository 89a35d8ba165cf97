/**
 * {@linkcode Outbox}: a connection's write side. Frames go into the current
 * {@linkcode FrameWriter}; a microtask flushes it in one socket write; frames written while a
 * write is in flight go into a second writer, flushed right after.
 *
 * @module
 */

import { FrameWriter } from "./frame_writer.ts";

/** The socket side the outbox needs. */
export interface ByteWriter {
  write(p: Uint8Array): Promise<number>;
}

/** Double-buffered, batching frame output of one connection. */
export class Outbox {
  /** The writer to append frames to now. Do not keep it across turns: the outbox swaps them. */
  w: FrameWriter = new FrameWriter();
  #spare: FrameWriter = new FrameWriter();
  readonly #conn: ByteWriter;
  readonly #onError: (err: unknown) => void;
  #scheduled = false;
  #writing = false;
  #dead = false;
  #waiters: (() => void)[] = [];
  #flushing: Promise<void> | null = null;
  /** Made once: queueMicrotask gets the same function every time. */
  readonly #task = () => {
    this.#scheduled = false;
    if (this.#writing || this.#dead) return;
    this.#flushing = this.#flush();
  };

  constructor(conn: ByteWriter, onError: (err: unknown) => void) {
    this.#conn = conn;
    this.#onError = onError;
  }

  /** Bytes appended and not yet handed to the socket (in flight excluded). */
  get pending(): number {
    return this.w.length;
  }

  /** Resolves once no socket write is in flight (after `kill()`: once the last one settled). */
  idle(): Promise<void> {
    return this.#flushing ?? Promise.resolve();
  }

  /** Flushes at the end of this turn (a microtask), unless a write is in flight. */
  schedule(): void {
    if (this.#scheduled || this.#writing || this.#dead) return;
    this.#scheduled = true;
    queueMicrotask(this.#task);
  }

  /** Resolves once everything appended so far has been written (or the outbox died). */
  flushed(): Promise<void> {
    if (this.#dead || (!this.#writing && this.w.length === 0)) return Promise.resolve();
    this.schedule();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Stops writing: later frames are dropped. */
  kill(): void {
    this.#dead = true;
    this.w.reset();
    this.#wake();
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      while (this.w.length > 0 && !this.#dead) {
        const batch = this.w;
        this.w = this.#spare;
        this.#spare = batch;
        let view = batch.view();
        while (view.length > 0) {
          const n = await this.#conn.write(view);
          view = view.subarray(n);
        }
        batch.reset();
      }
    } catch (err) {
      this.#dead = true;
      this.#onError(err);
    } finally {
      this.#writing = false;
      this.#flushing = null;
      this.#wake();
    }
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}
