declare module 'corral:plugin/log@0.1.1' {
  /**
   * Writes one line with key/value fields. The host keeps 4 KiB of the
   * message and 4 KiB of the fields (names cut at 128 bytes, values at
   * 1 KiB), at most 1,000 lines a call, and at most the plugin's
   * `limits.log_lines_per_second` across all its calls. A line past those
   * is dropped and counted, never an error; the call goes on once other
   * waiting work has had its turn.
   */
  export function write(level: Level, message: string, fields: Array<[string, string]>): void;
  /**
   * Severity of a log line.
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
