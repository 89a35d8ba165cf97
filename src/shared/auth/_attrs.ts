// A cursor over the `attr=value,attr=value` syntax of SCRAM messages (RFC 5802 section 5.1).
// It works on bytes so that callers can cut the exact byte ranges that go into the AuthMessage.
import { malformed } from "./error.ts";

const decoder = new TextDecoder();
const COMMA = 0x2c;
const EQUALS = 0x3d;

/**
 * Shows one byte in an error message as Postgres does: `'x'` when printable, else `0x..`.
 * The end of the message shows as `0x00`, as in Postgres where it is the string terminator.
 */
export function sanitizeChar(byte: number): string {
  if (byte >= 0x21 && byte <= 0x7e) return `'${String.fromCharCode(byte)}'`;
  return `0x${byte.toString(16).padStart(2, "0")}`;
}

/** One attribute read by {@linkcode AttrReader.readAny}. */
export type Attr = { name: string; value: string };

/** Reads SCRAM attributes from a message; errors are {@linkcode malformed} with Postgres's detail. */
export class AttrReader {
  #buf: Uint8Array;
  #pos = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  /** Byte offset of the next unread byte. */
  get pos(): number {
    return this.#pos;
  }

  /** True when the whole message has been read. */
  get atEnd(): boolean {
    return this.#pos >= this.#buf.length;
  }

  /** The next byte, or 0 at the end (Postgres's terminator). */
  peek(): number {
    return this.#pos < this.#buf.length ? this.#buf[this.#pos] : 0;
  }

  /** Skips one byte. */
  skip(): void {
    this.#pos++;
  }

  /** Reads `name=value` and the comma after it, if any; throws unless the attribute is `name`. */
  read(name: string): string {
    const found = this.peek();
    if (found !== name.charCodeAt(0)) {
      throw malformed(`Expected attribute "${name}" but found "${sanitizeChar(found)}".`);
    }
    return this.#value(name);
  }

  /** Reads any `name=value` and the comma after it, if any. */
  readAny(): Attr {
    const found = this.peek();
    if (this.atEnd) throw malformed("Attribute expected, but found end of string.");
    const isAlpha = (found >= 0x41 && found <= 0x5a) || (found >= 0x61 && found <= 0x7a);
    if (!isAlpha) {
      throw malformed(
        `Attribute expected, but found invalid character "${sanitizeChar(found)}".`,
      );
    }
    const name = String.fromCharCode(found);
    return { name, value: this.#value(name) };
  }

  #value(name: string): string {
    this.#pos++;
    if (this.peek() !== EQUALS) {
      throw malformed(`Expected character "=" for attribute "${name}".`);
    }
    const start = ++this.#pos;
    let end = this.#buf.indexOf(COMMA, start);
    if (end === -1) end = this.#buf.length;
    this.#pos = Math.min(end + 1, this.#buf.length);
    return decoder.decode(this.#buf.subarray(start, end));
  }
}
