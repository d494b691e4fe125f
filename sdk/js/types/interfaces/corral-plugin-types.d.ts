declare module 'corral:plugin/types@0.1.1' {
  /**
   * A header or parameter: a name and its value. Header names are
   * lower-case; a header that repeats appears once per value.
   */
  export type Field = [string, string];
  /**
   * An HTTP request as the host hands it to a route plugin.
   */
  export interface HttpRequest {
    /**
     * Upper-case method, e.g. `GET`.
     */
    method: string,
    /**
     * Path without the query, percent-decoding left to the guest.
     */
    path: string,
    /**
     * Raw query string without the leading `?` (empty if none).
     */
    query: string,
    /**
     * Request headers, lower-case names.
     */
    headers: Array<Field>,
    /**
     * Values captured by the matched route pattern: `:name` segments and,
     * for a trailing `*`, the rest of the path under the name `*`.
     */
    params: Array<Field>,
    /**
     * The whole body; the host enforces its size cap before the call.
     */
    body: Uint8Array,
  }
  /**
   * The response a route plugin returns.
   */
  export interface HttpResponse {
    /**
     * Status code, 100 to 599; anything else is answered by the host as 500.
     */
    status: number,
    /**
     * Response headers. Hop-by-hop headers are dropped by the host.
     */
    headers: Array<Field>,
    /**
     * The whole body. One over the host's cap (16 MiB unless the
     * operator sets another) is refused as the host takes it, from its
     * length, before any of it is copied: the client gets a 500
     * `response_too_large`. Stream larger bodies with `wasi:http`.
     */
    body: Uint8Array,
  }
  /**
   * One record of the durable event log.
   */
  export interface Event {
    /**
     * Unique id of the event (stable across redeliveries).
     */
    id: string,
    /**
     * Topic the event was published on, dot-separated (`orders.created`).
     */
    topic: string,
    /**
     * Position in the log; strictly increasing within the log.
     */
    sequence: bigint,
    /**
     * Unix time in milliseconds at which the event was appended. In the
     * deterministic worlds this is also what the WASI clocks return.
     */
    timestampMs: bigint,
    /**
     * Tenant the event belongs to (empty for the default tenant).
     */
    tenant: string,
    /**
     * Correlation id carried from the request or event that caused this one.
     */
    correlationId: string,
    /**
     * W3C `traceparent` of the causing span, if any.
     */
    traceparent?: string,
    /**
     * The event body.
     */
    payload: Uint8Array,
  }
  /**
   * A request to change one entity's state, handed to a cart plugin.
   */
  export interface Mutation {
    /**
     * Unique id of the mutation: the client's idempotency id or one the
     * host assigned. Seeds the deterministic random source.
     */
    id: string,
    /**
     * The entity (cart) the mutation applies to, e.g. the cart id.
     */
    entity: string,
    /**
     * One of the kinds the plugin declared in `describe()`.
     */
    kind: string,
    /**
     * Unix time in milliseconds at which the host accepted the mutation;
     * what the WASI clocks return during `apply`.
     */
    timestampMs: bigint,
    /**
     * The mutation body.
     */
    payload: Uint8Array,
  }
  /**
   * An error a handler reports on purpose (as opposed to a trap).
   */
  export interface Failure {
    /**
     * A short machine-readable code, e.g. `invalid-quantity`.
     */
    code: string,
    /**
     * A message for people.
     */
    message: string,
  }
  /**
   * An event to publish, produced by a cart mutation.
   */
  export interface OutgoingEvent {
    /**
     * Topic to publish on.
     */
    topic: string,
    /**
     * The event body.
     */
    payload: Uint8Array,
  }
  /**
   * An HTTP route a plugin serves.
   */
  export interface Route {
    /**
     * Upper-case method, or `*` for any method.
     */
    method: string,
    /**
     * Path pattern: literal segments, `:name` segments captured as params,
     * and an optional trailing `*` matching the rest of the path.
     */
    pattern: string,
  }
  /**
   * A recurring schedule: the host delivers an event on topic
   * `schedule.<plugin>.<name>` at every tick of the cron expression.
   */
  export interface Schedule {
    /**
     * Name of the schedule, unique within the plugin.
     */
    name: string,
    /**
     * Cron expression with seconds: `sec min hour day-of-month month day-of-week`.
     */
    cron: string,
  }
  /**
   * What a plugin says about itself. The operator's sidecar `NAME.toml`
   * may override the routes, topics and schedules.
   */
  export interface Descriptor {
    /**
     * Plugin name: lower-case letters, digits and `-`.
     */
    name: string,
    /**
     * Version, semver by convention.
     */
    version: string,
    /**
     * Routes served (route world).
     */
    routes: Array<Route>,
    /**
     * Topics or patterns subscribed to (event-handler and projection
     * worlds): `orders.created`, `orders.*` (one segment), `orders.>`
     * (one or more segments).
     */
    topics: Array<string>,
    /**
     * Schedules (event-handler world).
     */
    schedules: Array<Schedule>,
    /**
     * Mutation kinds accepted (cart world).
     */
    mutationKinds: Array<string>,
  }
}
