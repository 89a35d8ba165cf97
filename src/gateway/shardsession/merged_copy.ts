/**
 * `COPY (query) TO STDOUT` whose query needs merging across shards (ORDER BY, LIMIT, aggregates,
 * GROUP BY, DISTINCT): the query is merged as a SELECT is (text results), and its rows are
 * written here as COPY's text or CSV lines, as Postgres's COPY TO writes them (its escaping and
 * quoting rules, the statement's delimiter, NULL string, quote, escape and HEADER).
 *
 * @module
 */

import { BackendCode, concatBytes } from "../../shared/wire/mod.ts";
import type { CopyFormat } from "../planner/mod.ts";
import { fieldNames, rowValues } from "../merge/rows.ts";
import { commandComplete, splitMessages } from "./messages.ts";
import { COPY_DONE, dataFrame } from "./split_copy.ts";

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * The client's answer to the COPY, from the merged answer to its query: the same notices and
 * error (an error before any row: no copy-out at all), else CopyOutResponse, a CopyData per line,
 * CopyDone and `COPY n`, then the ReadyForQuery.
 */
export function copyOutAnswer(answer: Uint8Array, format: CopyFormat): Uint8Array {
  const msgs = splitMessages(answer);
  if (msgs.some((m) => m.code === BackendCode.ErrorResponse)) {
    return concatBytes(
      msgs.filter((m) =>
        m.code !== BackendCode.RowDescription &&
        m.code !== BackendCode.DataRow
      ).map((m) => m.frame),
    );
  }
  const out: Uint8Array[] = [];
  const desc = msgs.find((m) => m.code === BackendCode.RowDescription);
  const names = desc ? fieldNames(desc.frame) : [];
  out.push(copyOutResponse(names.length));
  const line = format.format === "csv" ? csvLine : textLine;
  const single = names.length === 1;
  if (format.header) out.push(copyData(line(names, format, single)));
  let rows = 0;
  for (const m of msgs) {
    if (m.code === BackendCode.DataRow) {
      const values = rowValues(m.frame).map((v) => (v === null ? null : dec.decode(v)));
      out.push(copyData(line(values, format, single)));
      rows++;
    } else if (m.code === BackendCode.NoticeResponse) out.push(m.frame);
  }
  out.push(COPY_DONE, commandComplete(`COPY ${rows}`));
  const ready = msgs.at(-1);
  if (ready?.code === BackendCode.ReadyForQuery) out.push(ready.frame);
  return concatBytes(out);
}

/** A line in COPY's text format (CopyAttributeOutText's escapes). */
function textLine(values: (string | null)[], f: CopyFormat): string {
  return values.map((v) => (v === null ? f.null : escapeText(v, f.delimiter))).join(f.delimiter) +
    "\n";
}

const TEXT_ESCAPES: Record<string, string> = {
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\v": "\\v",
  "\\": "\\\\",
};

function escapeText(v: string, delimiter: string): string {
  let out = "";
  for (const c of v) {
    const escaped = TEXT_ESCAPES[c];
    if (escaped !== undefined) out += escaped;
    else if (c === delimiter) out += "\\" + c;
    else out += c;
  }
  return out;
}

/**
 * A line in CSV: a value is quoted when it holds the delimiter, the quote, a newline or a
 * carriage return, when it equals the NULL string (column names too), or when it is `\.` alone on
 * its line; inside quotes, the quote and escape characters are preceded by the escape character.
 */
function csvLine(
  values: (string | null)[],
  f: CopyFormat,
  single: boolean,
): string {
  return values.map((v) => {
    if (v === null) return f.null;
    let quote = v === f.null;
    if (!quote) {
      quote = (single && v === "\\.") ||
        [...v].some((c) => c === f.delimiter || c === f.quote || c === "\n" || c === "\r");
    }
    if (!quote) return v;
    let out = f.quote;
    for (const c of v) out += (c === f.quote || c === f.escape ? f.escape : "") + c;
    return out + f.quote;
  }).join(f.delimiter) + "\n";
}

function copyOutResponse(columns: number): Uint8Array {
  const out = new Uint8Array(1 + 4 + 1 + 2 + 2 * columns);
  const dv = new DataView(out.buffer);
  out[0] = BackendCode.CopyOutResponse;
  dv.setInt32(1, out.length - 1);
  out[5] = 0; // text
  dv.setInt16(6, columns);
  return out;
}

function copyData(line: string): Uint8Array {
  return dataFrame(enc.encode(line));
}
