/// <reference path="./corral-plugin-types.d.ts" />
declare module 'corral:plugin/http-handler@0.1.1' {
  /**
   * Handles one request. Each call runs in a fresh instance.
   */
  export function handle(request: HttpRequest): HttpResponse;
  export type HttpRequest = import('corral:plugin/types@0.1.1').HttpRequest;
  export type HttpResponse = import('corral:plugin/types@0.1.1').HttpResponse;
}
