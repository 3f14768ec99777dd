/**
 * RFC 4180 CSV, the one encoder of every export (the audit trail, an account's ledger): records end with CRLF.
 */

/**
 * One field: quoted when it holds a quote, comma or line break (quotes doubled). A text that a spreadsheet would run
 * as a formula (leading `=`, `+`, `-`, `@`, tab or CR) is prefixed with `'` (OWASP CSV injection). A number is
 * written as it is (a negative amount is data, not a formula); any other value as its JSON.
 */
export function csvField(value: unknown): string {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  let s =
    value === undefined || value === null ? "" : typeof value === "string" ? value : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** One record, its line end included. */
export function csvRow(values: readonly unknown[]): string {
  return `${values.map(csvField).join(",")}\r\n`;
}
