// `describe()`'s record from what a plugin declares: the lists a world
// does not use left empty.

import type { Descriptor } from 'corral:plugin/types@0.1.1';

/** A plugin's name and version. */
export interface Named {
  name: string;
  version: string;
}

/** The descriptor of `plugin`, with `parts` filled in. */
export function descriptor(plugin: Named, parts: Partial<Omit<Descriptor, 'name' | 'version'>>): Descriptor {
  return {
    name: plugin.name,
    version: plugin.version,
    routes: [],
    topics: [],
    schedules: [],
    mutationKinds: [],
    ...parts,
  };
}
