// `corral:plugin/log`: structured lines, fields as an object (values
// written as text, objects as JSON). The host adds the plugin, request id,
// tenant and trace.

import { write, type Level } from 'corral:plugin/log@0.1.1';

/** A line's fields. */
export type Fields = Record<string, unknown>;

/** A line's fields as the import takes them: strings as they are, anything else as JSON. */
function fieldPairs(fields: Fields): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const name in fields) {
    const value = fields[name];
    pairs.push([name, typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value))]);
  }
  return pairs;
}

function line(level: Level, message: string, fields: Fields): void {
  write(level, message, fieldPairs(fields));
}

/** Writes structured log lines. */
export const log = {
  trace: (message: string, fields: Fields = {}) => line('trace', message, fields),
  debug: (message: string, fields: Fields = {}) => line('debug', message, fields),
  info: (message: string, fields: Fields = {}) => line('info', message, fields),
  warn: (message: string, fields: Fields = {}) => line('warn', message, fields),
  error: (message: string, fields: Fields = {}) => line('error', message, fields),
};
