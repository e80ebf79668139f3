export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Keys whose values are never written, whatever the caller passes. */
const redactedKey = /authorization|cookie|password|secret|token|credential|encryption_key|database_url|^value$/i;

/** The password part of a connection URL (`postgres://user:password@host`). */
const urlPassword = /([a-z][a-z0-9+.-]*:\/\/[^:/@\s]+:)[^@\s]+@/gi;

function redact(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return value.replace(urlPassword, "$1***@");
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) return { name: value.name, message: redact(value.message, depth + 1), stack: redact(value.stack, depth + 1) };
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = redactedKey.test(key) ? "[redacted]" : redact(inner, depth + 1);
  }
  return out;
}

/** Structured JSON logs, one object per line; fields bound at creation (e.g. request_id) ride along. */
export class Logger {
  private readonly level: LogLevel;
  private readonly bound: LogFields;

  constructor(level: LogLevel = "info", bound: LogFields = {}) {
    this.level = level;
    this.bound = bound;
  }

  child(fields: LogFields): Logger {
    return new Logger(this.level, { ...this.bound, ...fields });
  }

  debug(msg: string, fields?: LogFields): void {
    this.write("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.write("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.write("error", msg, fields);
  }

  private write(level: LogLevel, msg: string, fields?: LogFields): void {
    if (order[level] < order[this.level]) return;
    const line = JSON.stringify(redact({ time: new Date().toISOString(), level, msg, ...this.bound, ...fields }));
    if (level === "error") console.error(line);
    else if (level === "warn") console.warn(line);
    else console.log(line);
  }
}
