/// <reference path="./interfaces/corral-plugin-batch-projector.d.ts" />
/// <reference path="./interfaces/corral-plugin-batch.d.ts" />
/// <reference path="./interfaces/corral-plugin-log.d.ts" />
/// <reference path="./interfaces/corral-plugin-types.d.ts" />
declare module 'corral:plugin/batched-projection@0.1.1' {
  export type Descriptor = import('corral:plugin/types@0.1.1').Descriptor;
  export type * as CorralPluginBatch011 from 'corral:plugin/batch@0.1.1'; // import corral:plugin/batch@0.1.1
  export type * as CorralPluginLog011 from 'corral:plugin/log@0.1.1'; // import corral:plugin/log@0.1.1
  export type * as CorralPluginTypes011 from 'corral:plugin/types@0.1.1'; // import corral:plugin/types@0.1.1
  export * as batchProjector from 'corral:plugin/batch-projector@0.1.1'; // export corral:plugin/batch-projector@0.1.1
  /**
  * Describes the plugin (name, version, what it serves). Called once
  * when the host loads the component, never per request.
  */
  export function describe(): Descriptor;
}
