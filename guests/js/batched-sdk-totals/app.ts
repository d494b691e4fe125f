// Fixture: `projection-sdk-totals`' fold (imported from it) in the
// `batched-projection` world (`defineBatchedProjection`: the host may fold
// many events in one call), so the same test checks both fold to the same
// views. Imports only `corral/batched` (the world may import `log` and
// `batch` alone).

import { defineBatchedProjection } from 'corral/batched';
import { totals } from '../projection-sdk-totals/app.js';

export const { describe, batchProjector } = defineBatchedProjection({ ...totals, name: 'js-sdk-batched' });
