// Entry of a validation thread (see validation-pool.ts). Plain JavaScript so
// that any Node can start it; it loads the TypeScript through tsx.
import { tsImport } from 'tsx/esm/api';

const { validateSubmission } = await tsImport('./validation.worker.ts', import.meta.url);

export default validateSubmission;
