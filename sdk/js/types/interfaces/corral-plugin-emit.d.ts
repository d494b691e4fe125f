declare module 'corral:plugin/emit@0.1.1' {
  /**
   * Appends an event now and returns its sequence number once it is
   * durable. The event inherits the calling request's or event's tenant,
   * correlation id and traceparent. It stays published whatever happens
   * to the call afterwards: a call that then traps, runs out of fuel or
   * time, or (in an event handler) returns an error and is retried,
   * leaves it in the log, and the retry publishes it again. Prefer
   * `publish-on-success` unless the caller needs the sequence number.
   */
  export function publish(topic: string, payload: Uint8Array): bigint;
  /**
   * Queues an event to be appended when the call succeeds, and only
   * then: when a route returns its response (a `wasi:http` guest: when
   * its call ends), before the response is sent; when an event handler
   * returns ok, together with the handler's checkpoint, so an event
   * handled again after a crash does not publish twice. A call that
   * traps, runs out of fuel or time, or (event handler) returns an
   * error publishes none of its queued events. The topic, size and
   * schema are checked here, as `publish` checks them; a call may queue at most
   * 4 MiB of events (`too-large` says so). If the log cannot take
   * them when the call ends, a route answers 503 and an event is
   * retried. (A host from before this function was added refuses a
   * component that imports it, and names the function.)
   */
  export function publishOnSuccess(topic: string, payload: Uint8Array): void;
  /**
   * Why an event was not appended.
   */
  export type EmitError = EmitErrorInvalidTopic | EmitErrorTooLarge | EmitErrorUnavailable;
  /**
   * Topic is empty, has an empty segment or uses wildcard characters;
   * or the payload does not match the JSON Schema a served plugin
   * declares for the topic (the message then starts with `payload`
   * and names the schema, the path in the payload and the rule
   * broken). Nothing was published or queued.
   */
  export interface EmitErrorInvalidTopic {
    tag: 'invalid-topic',
    val: string,
  }
  /**
   * Payload exceeds the host's limit (the limit in bytes).
   */
  export interface EmitErrorTooLarge {
    tag: 'too-large',
    val: bigint,
  }
  /**
   * The log could not take the event (e.g. storage unavailable); retry later.
   */
  export interface EmitErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
}
