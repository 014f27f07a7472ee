import { Schema, Types, type Connection, type Model } from 'mongoose';
import type { Models } from '../db/models.ts';
import { noteChange } from '../shared/change-stamp.ts';
import { LANGUAGES } from '../shared/languages.ts';

/**
 * A compact copy of each campaign's personal links (link, contact,
 * institution, language, revoked or not, token generation), packed in binary
 * fields of a few documents found by _id, so that the campaign page, the
 * confirmation page before "Send the invitations" and the sender's passes
 * need not read the invitations collection: the embedded engine answers any filter but an _id by reading
 * every link of every campaign (6-9 s at 4 x 3,000 links under busy senders).
 *
 * Without transactions or an atomic conditional update, the copy is tied to
 * the writers by numbered changes: every writer of a campaign's links claims
 * the campaign's next change number by a unique insert (`<campaign>:<n>`, in
 * link_changes) before its first write and marks it done after its last. A
 * copy records the number it is up to (`upTo`: every change up to it done
 * and in the copy) and is trusted only while change `upTo + 1` does not exist:
 * one more look-up by _id. A writer that finds the copy up to the change
 * before its own, and no change after its own, stores the copy with its own
 * edits as the next; otherwise the next reader reads the collection once and
 * stores a new copy, if every change so far is done.
 *
 * So a second process's writes never hide in the copy: they claim a number
 * after the copy's, which makes it untrusted until a copy past them is
 * stored. A writer that crashed leaves its change claimed and not done: the
 * readers read the collection (never a copy missing its writes) until it is
 * older than WRITER_GONE_MS, when it counts as done (it writes no more).
 * Numbers are never deleted, so a probe is always right; copies are written
 * once under their number (a second store of the same number is as good) and the
 * one before is removed. The campaign's "links" change stamp is still moved
 * before and after (change-stamp.ts), for the pages that keep what they
 * computed per process.
 */

/** A personal link as the copy holds it. */
export interface LinkEntry {
  _id: Types.ObjectId;
  contact: Types.ObjectId;
  institution: Types.ObjectId;
  language?: string | null;
  revoked: boolean;
  /** The link's tokenGeneration: what its personal link is derived from (personalLink). */
  generation: number;
}

/** What a writer did to one campaign's links. */
export interface LinkEdits {
  added?: ReadonlyArray<Omit<LinkEntry, 'revoked' | 'generation'> & { revoked?: boolean; generation?: number }>;
  revoked?: ReadonlyArray<Types.ObjectId>;
  /** Links replaced by a new one (regenerateLink): not revoked, and of this generation or a later one. */
  reissued?: ReadonlyArray<{ _id: Types.ObjectId; generation: number }>;
  removed?: ReadonlyArray<Types.ObjectId>;
  /** Every link of the campaign went. */
  removedAll?: boolean;
}

/** A change not done and not touched for this long is a writer that stopped (crashed): no write of it is to come. */
export const WRITER_GONE_MS = 15 * 60_000;
/** Links per document: 42 bytes each, well under the 16 MB a document may hold. */
const LINKS_PER_PART = 200_000;
const ENTRY_BYTES = 42;
/**
 * In the copies' ids: a copy of an earlier layout (without the generation,
 * under `<campaign>@<n>`) is never found, so the first reader reads the links
 * and stores this layout's copy; the earlier one is removed then (storeCopy).
 */
const LAYOUT = 'g';
const NO_LANGUAGE = 255;

const linkChangeSchema = new Schema(
  { _id: { type: String, required: true }, campaign: { type: Schema.Types.ObjectId, required: true }, at: { type: Date, required: true }, doneAt: { type: Date } },
  { versionKey: false },
);
/**
 * `<campaign>`: the number of the latest copy; `<campaign>@<n><layout>`: copy n's first part;
 * `<campaign>@<n><layout>#<i>.<build>`: its further parts, of the build its first part names (two
 * stores of copy n stopped half-way never mix their parts).
 */
const linkCopySchema = new Schema(
  { _id: { type: String, required: true }, upTo: { type: Number }, parts: { type: Number }, build: { type: String }, links: { type: Buffer } },
  { versionKey: false },
);

type LinkChangeDoc = { _id: string; campaign: Types.ObjectId; at: Date; doneAt?: Date | null };
type LinkCopyDoc = { _id: string; upTo?: number; parts?: number; build?: string; links?: Buffer };

export function defineLinkCopyModels(connection: Connection) {
  return {
    LinkChange: connection.model('LinkChange', linkChangeSchema, 'link_changes') as unknown as Model<LinkChangeDoc>,
    LinkCopy: connection.model('LinkCopy', linkCopySchema, 'link_copies') as unknown as Model<LinkCopyDoc>,
  };
}

type CopyModels = Pick<Models, 'LinkChange' | 'LinkCopy' | 'Invitation' | 'ChangeStamp'>;

/** A writer's claimed change of one campaign's links. */
interface ClaimedChange {
  campaign: string;
  n: number;
  /** Every earlier change was done when this one was claimed: a read of the links after the claim is a base for the copy. */
  afterSettled: boolean;
}

/** A writer's changes, one per campaign it writes links of (beginLinkChanges). */
export interface LinkWriter {
  changes: ClaimedChange[];
}

const changeId = (campaign: string, n: number) => `${campaign}:${n}`;
const copyId = (campaign: string, n: number, part = 0, build = '', layout = LAYOUT) =>
  part === 0 ? `${campaign}@${n}${layout}` : `${campaign}@${n}${layout}#${part}.${build}`;

/**
 * Call before writing any link of these campaigns: claims each one's next
 * change number and moves its "links" stamp. Then write, then call
 * finishLinkChanges, also after a write that failed (in a finally).
 */
export async function beginLinkChanges(models: CopyModels, campaigns: Iterable<Types.ObjectId | string>): Promise<LinkWriter> {
  const changes: ClaimedChange[] = [];
  for (const campaign of new Set([...campaigns].map(String))) {
    const latest = (await models.LinkCopy.findById(campaign, { upTo: 1 }).lean())?.upTo ?? 0;
    let afterSettled = true;
    for (let n = latest + 1; ; n++) {
      try {
        await models.LinkChange.collection.insertOne({ _id: changeId(campaign, n), campaign: new Types.ObjectId(campaign), at: new Date() } as never);
        changes.push({ campaign, n, afterSettled });
        break;
      } catch (error) {
        if ((error as { code?: number }).code !== 11000) throw error;
        // Change n is another writer's: it must be done before what this writer reads can stand for the links.
        const other = await models.LinkChange.findById(changeId(campaign, n)).lean();
        if (!other || !isSettled(other)) afterSettled = false;
      }
    }
  }
  await noteChange(models, 'links', changes.map((c) => c.campaign));
  return { changes };
}

/** Says the writer is still at work (a long run of steps), so that its change is not taken for a crashed one. */
export async function touchLinkChanges(models: CopyModels, writer: LinkWriter): Promise<void> {
  for (const change of writer.changes) await models.LinkChange.updateOne({ _id: changeId(change.campaign, change.n) }, { $set: { at: new Date() } });
}

/**
 * Call after the last write: marks the changes done, stores the copies with
 * the edits when they can stand for the links (see above), and moves the
 * "links" stamps. `edits` per campaign id; `base` is what the writer read of
 * a campaign's links after beginLinkChanges, when it read them all.
 */
export async function finishLinkChanges(
  models: CopyModels,
  writer: LinkWriter,
  edits: ReadonlyMap<string, LinkEdits> = new Map(),
  base: ReadonlyMap<string, ReadonlyArray<LinkEntry>> = new Map(),
): Promise<void> {
  for (const change of writer.changes) {
    await models.LinkChange.updateOne({ _id: changeId(change.campaign, change.n) }, { $set: { doneAt: new Date() } });
    const campaignEdits = edits.get(change.campaign);
    // A writer that does not say what it did cannot carry the copy forward: the next reader reads the links.
    if (campaignEdits) await carryCopyForward(models, change, campaignEdits, change.afterSettled ? base.get(change.campaign) : undefined);
  }
  await noteChange(models, 'links', writer.changes.map((c) => c.campaign));
}

async function carryCopyForward(models: CopyModels, change: ClaimedChange, edits: LinkEdits, read: ReadonlyArray<LinkEntry> | undefined): Promise<void> {
  const [previous, next] = await Promise.all([
    read ? undefined : readCopy(models, change.campaign, change.n - 1),
    models.LinkChange.findById(changeId(change.campaign, change.n + 1), { _id: 1 }).lean(),
  ]);
  // Another writer came after this one: the copy waits for a reader.
  if (next) return;
  const links = read ?? previous;
  if (!links) return;
  await storeCopy(models, change.campaign, change.n, applyEdits(links, edits), change.n - 1);
}

function applyEdits(links: ReadonlyArray<LinkEntry>, edits: LinkEdits): LinkEntry[] {
  if (edits.removedAll) return [];
  const byId = new Map(links.map((l) => [String(l._id), l]));
  for (const link of edits.added ?? []) byId.set(String(link._id), { ...link, revoked: link.revoked ?? false, generation: link.generation ?? 0 });
  for (const id of edits.revoked ?? []) {
    const link = byId.get(String(id));
    if (link) byId.set(String(id), { ...link, revoked: true });
  }
  for (const { _id, generation } of edits.reissued ?? []) {
    const link = byId.get(String(_id));
    // As the write ($max): a generation never goes down.
    if (link) byId.set(String(_id), { ...link, revoked: false, generation: Math.max(link.generation, generation) });
  }
  for (const id of edits.removed ?? []) byId.delete(String(id));
  return [...byId.values()];
}

/**
 * A campaign's links: from its copy when no change came after it, otherwise
 * read from the invitations collection (every link of every campaign) and
 * stored as the new copy when every change so far is done. An existing
 * database, with no copy yet, is read once this way; nothing is lost, as the
 * invitations stay what they are and the copy is only ever a second reading
 * of them.
 */
export async function readCampaignLinkEntries(models: CopyModels, campaignId: Types.ObjectId | string): Promise<LinkEntry[]> {
  return (await readCampaignLinks(models, campaignId)).links;
}

/**
 * A campaign's links as readCampaignLinkEntries reads them, with the change
 * they are up to when every change up to it was done (`upTo`): they stand
 * for the links as long as linksChangedAfter says no. Without `upTo`, a
 * writer was at work when they were read, and some of its writes may be missing.
 */
export async function readCampaignLinks(models: CopyModels, campaignId: Types.ObjectId | string): Promise<{ links: LinkEntry[]; upTo?: number }> {
  const campaign = String(campaignId);
  const latest = (await models.LinkCopy.findById(campaign, { upTo: 1 }).lean())?.upTo;
  let copied = false;
  if (latest !== undefined) {
    const [copy, next] = await Promise.all([readCopy(models, campaign, latest), models.LinkChange.findById(changeId(campaign, latest + 1), { _id: 1 }).lean()]);
    if (copy && !next) return { links: copy, upTo: latest };
    copied = Boolean(copy);
  }
  // Changes up to `latest` were all done when its copy was stored; those after it are looked up one by one (few: writers carry the copy forward).
  let upTo = latest ?? 0;
  let settled = true;
  for (;;) {
    const change = await models.LinkChange.findById(changeId(campaign, upTo + 1)).lean();
    if (!change) break;
    if (!isSettled(change)) settled = false;
    upTo += 1;
  }
  // Read after the changes were looked up: a change claimed since is a number after `upTo`, and makes this copy untrusted.
  const links = await readLinksAfresh(models, campaign);
  // A writer still at work: its writes may be half in what was read, so nothing is stored.
  if (settled && (upTo !== latest || !copied)) await storeCopy(models, campaign, upTo, links, latest);
  return { links, upTo: settled ? upTo : undefined };
}

/** Whether a writer has begun a change of the campaign's links since change `upTo` (one look-up by _id). */
export async function linksChangedAfter(models: Pick<Models, 'LinkChange'>, campaign: Types.ObjectId | string, upTo: number): Promise<boolean> {
  return Boolean(await models.LinkChange.findById(changeId(String(campaign), upTo + 1), { _id: 1 }).lean());
}

/** One kind of edit of many links, per campaign: what a writer of links of several campaigns says it did. */
export function editsByCampaign(links: ReadonlyArray<{ _id: Types.ObjectId; campaign: Types.ObjectId }>, kind: 'revoked' | 'removed'): Map<string, LinkEdits> {
  const ids = new Map<string, Types.ObjectId[]>();
  for (const { _id, campaign } of links) {
    const list = ids.get(String(campaign));
    if (list) list.push(_id);
    else ids.set(String(campaign), [_id]);
  }
  return new Map([...ids].map(([campaign, list]) => [campaign, { [kind]: list }]));
}

/** A campaign's links read from the invitations collection itself (every link of every campaign, on the embedded engine). */
export async function readLinksAfresh(models: Pick<Models, 'Invitation'>, campaign: Types.ObjectId | string): Promise<LinkEntry[]> {
  const invitations = await models.Invitation.find({ campaign }, { contact: 1, institution: 1, language: 1, revokedAt: 1, tokenGeneration: 1 }).lean();
  return invitations.map((l) => ({ _id: l._id, contact: l.contact, institution: l.institution, language: l.language, revoked: Boolean(l.revokedAt), generation: l.tokenGeneration ?? 0 }));
}

function isSettled(change: LinkChangeDoc): boolean {
  return Boolean(change.doneAt) || Date.now() - change.at.getTime() >= WRITER_GONE_MS;
}

async function readCopy(models: CopyModels, campaign: string, n: number): Promise<LinkEntry[] | undefined> {
  if (n < 0) return undefined;
  const head = await models.LinkCopy.findById(copyId(campaign, n)).lean();
  if (!head?.links) return undefined;
  const parts = [head.links];
  for (let part = 1; part < (head.parts ?? 1); part++) {
    const more = await models.LinkCopy.findById(copyId(campaign, n, part, head.build)).lean();
    // Removed meanwhile (a newer copy replaced it): read afresh.
    if (!more?.links) return undefined;
    parts.push(more.links);
  }
  return parts.flatMap((part) => decode(bytesOf(part)));
}

/** Stores copy `n` (parts first, then its first part, which names how many there are), points readers to it, and removes copy `replaced`. */
async function storeCopy(models: CopyModels, campaign: string, n: number, links: ReadonlyArray<LinkEntry>, replaced: number | undefined): Promise<void> {
  const parts: Buffer[] = [];
  for (let start = 0; start === 0 || start < links.length; start += LINKS_PER_PART) parts.push(encode(links.slice(start, start + LINKS_PER_PART)));
  // Copy n holds every change up to n (and at most some of a change after n, which then exists and makes it untrusted):
  // a duplicate first part is another store's copy n, as good as this one, and names its own parts.
  const build = new Types.ObjectId().toHexString();
  for (let part = parts.length - 1; part >= 0; part--) {
    await insertIgnoringDuplicate(models, { _id: copyId(campaign, n, part, build), ...(part === 0 ? { upTo: n, parts: parts.length, build } : {}), links: parts[part] });
  }
  // Two readers may set it in the other order: a pointer to an older copy costs a read of the links, never a wrong count (that copy's next change exists).
  try {
    await models.LinkCopy.updateOne({ _id: campaign }, { $set: { upTo: n } }, { upsert: true });
  } catch (error) {
    if ((error as { code?: number }).code !== 11000) throw error;
    await models.LinkCopy.updateOne({ _id: campaign }, { $set: { upTo: n } });
  }
  if (replaced !== undefined && replaced !== n) await removeCopy(models, campaign, replaced);
  // A copy of the earlier layout, under any number, is one this one replaces.
  if (replaced !== undefined) await removeCopy(models, campaign, replaced, '');
}

async function removeCopy(models: CopyModels, campaign: string, n: number, layout = LAYOUT): Promise<void> {
  const head = await models.LinkCopy.findById(copyId(campaign, n, 0, '', layout), { parts: 1, build: 1 }).lean();
  // Its further parts first: a first part left alone by a crash still names them.
  for (let part = (head?.parts ?? 1) - 1; part >= 0; part--) await models.LinkCopy.deleteOne({ _id: copyId(campaign, n, part, head?.build ?? '', layout) });
}

async function insertIgnoringDuplicate(models: CopyModels, doc: LinkCopyDoc): Promise<void> {
  try {
    await models.LinkCopy.collection.insertOne(doc as never);
  } catch (error) {
    if ((error as { code?: number }).code !== 11000) throw error;
  }
}

/** 12 bytes of link id, 12 of contact id, 12 of institution id, the language's number, 1 if revoked, the generation (4 bytes). */
function encode(links: ReadonlyArray<LinkEntry>): Buffer {
  const out = Buffer.alloc(links.length * ENTRY_BYTES);
  links.forEach((link, i) => {
    const at = i * ENTRY_BYTES;
    out.set(link._id.id, at);
    out.set(link.contact.id, at + 12);
    out.set(link.institution.id, at + 24);
    const language = (LANGUAGES as readonly string[]).indexOf(link.language ?? '');
    out[at + 36] = language < 0 ? NO_LANGUAGE : language;
    out[at + 37] = link.revoked ? 1 : 0;
    out.writeUInt32BE(link.generation, at + 38);
  });
  return out;
}

function decode(bytes: Buffer): LinkEntry[] {
  const links: LinkEntry[] = [];
  for (let at = 0; at + ENTRY_BYTES <= bytes.length; at += ENTRY_BYTES) {
    const language = bytes[at + 36]!;
    links.push({
      _id: new Types.ObjectId(bytes.subarray(at, at + 12)),
      contact: new Types.ObjectId(bytes.subarray(at + 12, at + 24)),
      institution: new Types.ObjectId(bytes.subarray(at + 24, at + 36)),
      language: language === NO_LANGUAGE ? null : LANGUAGES[language],
      revoked: bytes[at + 37] === 1,
      generation: bytes.readUInt32BE(at + 38),
    });
  }
  return links;
}

/** A binary field as the driver hands it back (a BSON Binary from a lean read). */
function bytesOf(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  const binary = value as { value?: () => Uint8Array };
  if (typeof binary.value !== 'function') throw new Error('A link copy holds no binary field');
  const bytes = binary.value();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
