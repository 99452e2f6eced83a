// The dashboard's server generates lifecycle-table.js from core's table (see
// dashboard/src/assets/static-assets.ts); its type comes from the same place, so it cannot drift.
import type { ALLOWED_FROM as FROM_CORE } from '../../../../core/src/lifecycle.ts';

export declare const ALLOWED_FROM: typeof FROM_CORE & { edit: (typeof FROM_CORE)['update'] };
