import { threadId, Worker } from 'node:worker_threads';
import { decodeRecord, flattenerOf } from './analytic-record.ts';
import { EvidenceStore } from './evidence-store.ts';
import { viewTables } from './evidence-tally.ts';
import { ACCREDITED_STATUSES, defineIndicators } from './indicators.ts';
import type { QuestionCatalogue } from './question-catalogue.ts';
import { unpackBucket, unpackRecord } from './record-snapshot.ts';

/**
 * What a snapshot's counts are made for: everything the store's spec is
 * built from (the image carries a hash of that spec, and a load refuses an
 * image made for another). Plain data, so it crosses to a worker thread.
 */
export interface CountsFor {
  catalogue: QuestionCatalogue;
  institutionCap: number;
}

/** The counts of the records of these buckets (deflated lines, in order), as an image; in this thread, in one go. */
export function countBuckets(target: CountsFor, buckets: readonly Uint8Array[]): Buffer | null {
  const set = defineIndicators(target.catalogue);
  const spec = { catalogue: target.catalogue, ratios: set.ratios, indicatorsOf: set.indicatorsOf, institutionCap: target.institutionCap, accredited: ACCREDITED_STATUSES };
  const store = new EvidenceStore(spec, viewTables());
  const flatten = flattenerOf(target.catalogue);
  for (const bucket of buckets) for (const line of unpackBucket(bucket)) store.apply(decodeRecord(unpackRecord(line), flatten));
  return store.image();
}

/** What a counting thread made, and which thread that was (never the caller's). */
export interface ThreadCounts {
  image: Buffer | null;
  threadId: number;
}

/**
 * Counts the buckets in a worker thread of its own, closed after. Counting
 * 50,000 records is 5-9 s of CPU, and its last step (settling the counts and
 * writing the image) is one synchronous piece of seconds: on the server's
 * thread, every page and respondent request waited for it at each build (a
 * build every 200 responses in fieldwork). Here the server's thread only
 * copies the buckets' bytes across (~100 KB each) and takes the image back
 * (its buffer transferred, not copied). Rejects when the thread fails.
 */
export function countInThread(target: CountsFor, buckets: readonly Uint8Array[]): Promise<ThreadCounts> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./counts.worker.mjs', import.meta.url), { workerData: { target, buckets } });
    let answered = false;
    worker.once('message', (message: { image: Uint8Array | null; threadId: number }) => {
      answered = true;
      const image = message.image && Buffer.from(message.image.buffer, message.image.byteOffset, message.image.byteLength);
      resolve({ image, threadId: message.threadId });
      void worker.terminate();
    });
    worker.once('error', (error) => {
      answered = true;
      reject(error);
      void worker.terminate();
    });
    worker.once('exit', (code) => answered || reject(new Error(`the counting thread exited (code ${code}) without counts`)));
  });
}

/** The answer a counting thread posts: the image in a buffer of its own, so that it can be transferred. */
export function threadAnswer(image: Buffer | null): { message: { image: Uint8Array | null; threadId: number }; transfer: ArrayBuffer[] } {
  if (!image) return { message: { image: null, threadId }, transfer: [] };
  // A small Buffer may sit in Node's shared pool: transferring that pool would take it from under other Buffers.
  const own = image.byteOffset === 0 && image.byteLength === image.buffer.byteLength ? new Uint8Array(image.buffer as ArrayBuffer) : new Uint8Array(image);
  return { message: { image: own, threadId }, transfer: [own.buffer as ArrayBuffer] };
}
