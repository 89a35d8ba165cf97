/**
 * The HPACK static table (RFC 7541 Appendix A) and lookups into it.
 *
 * @module
 */

/** Entries 1…61; `STATIC_TABLE[i - 1]` is index `i`. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

const BY_NAME = new Map<string, number>();
const BY_PAIR = new Map<string, number>();
for (let i = STATIC_TABLE.length - 1; i >= 0; i--) {
  const [name, value] = STATIC_TABLE[i];
  BY_NAME.set(name, i + 1); // the lowest index wins
  BY_PAIR.set(`${name}\0${value}`, i + 1);
}

/** Index of the entry with this name and value, or 0. */
export function staticIndex(name: string, value: string): number {
  return BY_PAIR.get(`${name}\0${value}`) ?? 0;
}

/** Lowest index of an entry with this name, or 0. */
export function staticNameIndex(name: string): number {
  return BY_NAME.get(name) ?? 0;
}
