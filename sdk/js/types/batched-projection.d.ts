/// <reference path="./interfaces/corral-plugin-batch-projector.d.ts" />
/// <reference path="./interfaces/corral-plugin-batch.d.ts" />
/// <reference path="./interfaces/corral-plugin-log.d.ts" />
/// <reference path="./interfaces/corral-plugin-types.d.ts" />
declare module 'corral:plugin/batched-projection@0.1.0' {
  export type Descriptor = import('corral:plugin/types@0.1.0').Descriptor;
  export type * as CorralPluginBatch010 from 'corral:plugin/batch@0.1.0'; // import corral:plugin/batch@0.1.0
  export type * as CorralPluginLog010 from 'corral:plugin/log@0.1.0'; // import corral:plugin/log@0.1.0
  export type * as CorralPluginTypes010 from 'corral:plugin/types@0.1.0'; // import corral:plugin/types@0.1.0
  export * as batchProjector from 'corral:plugin/batch-projector@0.1.0'; // export corral:plugin/batch-projector@0.1.0
  /**
  * Describes the plugin (name, version, what it serves). Called once
  * when the host loads the component, never per request.
  */
  export function describe(): Descriptor;
}
