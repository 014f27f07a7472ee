// Entry of a thread that counts a snapshot's records (see counts-thread.ts).
// Plain JavaScript so that any Node can start it, the built server too; it
// loads the TypeScript through tsx, as validation.worker.mjs does.
import { parentPort, workerData } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

const { countBuckets, threadAnswer } = await tsImport('./counts-thread.ts', import.meta.url);

const { message, transfer } = threadAnswer(countBuckets(workerData.target, workerData.buckets));
parentPort.postMessage(message, transfer);
