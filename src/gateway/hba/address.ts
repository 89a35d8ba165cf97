/** An IP address as bytes: 4 for IPv4, 16 for IPv6. */
export type IpBytes = Uint8Array;

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Parses a numeric IPv4 or IPv6 address (no host names, no zone); null when `text` is not one.
 * An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, how a dual-stack socket shows an IPv4 peer)
 * is returned as the IPv4 address, since Postgres sees IPv4 clients on an IPv4 socket.
 */
export function parseIp(text: string): IpBytes | null {
  const v4 = parseIpv4(text);
  if (v4) return v4;
  const v6 = parseIpv6(text);
  if (!v6) return null;
  const mapped = v6.subarray(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff));
  return mapped ? v6.slice(12) : v6;
}

function parseIpv4(text: string): IpBytes | null {
  const m = IPV4.exec(text);
  if (!m) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const n = Number(m[i + 1]);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseIpv6(text: string): IpBytes | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIpv4(p);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...new Array(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/**
 * The mask of a CIDR prefix length for an address of `bytes` bytes; null unless `text` is a
 * decimal from 0 to the address's bit count.
 */
export function cidrMask(text: string, bytes: number): IpBytes | null {
  if (!/^\d+$/.test(text)) return null;
  const bits = Number(text);
  if (bits > bytes * 8) return null;
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) {
    const left = bits - 8 * i;
    out[i] = left >= 8 ? 0xff : left <= 0 ? 0 : (0xff << (8 - left)) & 0xff;
  }
  return out;
}

/** True when `addr` is in the range `net`/`mask` (all three of one family). */
export function inRange(addr: IpBytes, net: IpBytes, mask: IpBytes): boolean {
  if (addr.length !== net.length || net.length !== mask.length) return false;
  for (let i = 0; i < addr.length; i++) {
    if (((addr[i] ^ net[i]) & mask[i]) !== 0) return false;
  }
  return true;
}

/** One address of this machine with the mask of its network (for `samehost` and `samenet`). */
export interface LocalAddress {
  addr: IpBytes;
  mask: IpBytes;
}

/** The addresses of this machine's interfaces, from Deno.networkInterfaces(). */
export function localAddresses(): LocalAddress[] {
  const out: LocalAddress[] = [];
  let ifaces: Deno.NetworkInterfaceInfo[] = [];
  try {
    ifaces = Deno.networkInterfaces();
  } catch {
    // No permission or no interfaces: samehost and samenet match nothing.
  }
  for (const i of ifaces) {
    const addr = parseIp(i.address.split("%")[0]);
    const mask = parseIp(i.netmask);
    if (addr && mask && addr.length === mask.length) out.push({ addr, mask });
  }
  return out;
}
