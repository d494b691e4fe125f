/// <reference path="./interfaces/corral-plugin-carts.d.ts" />
/// <reference path="./interfaces/corral-plugin-emit.d.ts" />
/// <reference path="./interfaces/corral-plugin-event-consumer.d.ts" />
/// <reference path="./interfaces/corral-plugin-kv.d.ts" />
/// <reference path="./interfaces/corral-plugin-log.d.ts" />
/// <reference path="./interfaces/corral-plugin-types.d.ts" />
/// <reference path="./interfaces/corral-plugin-views.d.ts" />
declare module 'corral:plugin/event-handler@0.1.1' {
  export type Descriptor = import('corral:plugin/types@0.1.1').Descriptor;
  export type * as CorralPluginCarts011 from 'corral:plugin/carts@0.1.1'; // import corral:plugin/carts@0.1.1
  export type * as CorralPluginEmit011 from 'corral:plugin/emit@0.1.1'; // import corral:plugin/emit@0.1.1
  export type * as CorralPluginKv011 from 'corral:plugin/kv@0.1.1'; // import corral:plugin/kv@0.1.1
  export type * as CorralPluginLog011 from 'corral:plugin/log@0.1.1'; // import corral:plugin/log@0.1.1
  export type * as CorralPluginTypes011 from 'corral:plugin/types@0.1.1'; // import corral:plugin/types@0.1.1
  export type * as CorralPluginViews011 from 'corral:plugin/views@0.1.1'; // import corral:plugin/views@0.1.1
  export * as eventConsumer from 'corral:plugin/event-consumer@0.1.1'; // export corral:plugin/event-consumer@0.1.1
  /**
  * Describes the plugin (name, version, what it serves). Called once
  * when the host loads the component, never per request.
  */
  export function describe(): Descriptor;
}
