import type { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Models } from '../../server/db/models.ts';
import { EmailChanges, journalEmailChanges } from '../../server/mail/email-changes.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { countByRound } from '../../server/mail/outbox.service.ts';
import { sendingFigures } from '../../server/mail/sending-progress.ts';
import { erasePerson } from '../../server/privacy/privacy.service.ts';
import { purgeCampaign } from '../../server/privacy/retention.service.ts';
import { createCampaignWithContacts } from '../helpers/mail.ts';
import { otherConnection } from '../helpers/other-connection.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

/**
 * A retention purge and an erasure remove a campaign's emails, then move its
 * `erasures` stamp, then remove its journal's entries and checkpoint; a
 * sending page's first load reads the stamp, reads the emails whole, stores a
 * checkpoint and reads the stamp again. Each test forces one order of those
 * seven steps (a step waits for its turn; the database does the work) and
 * checks that no checkpoint naming the removed emails is left, nor counted.
 */

let platform: TestPlatform;
let reader: Awaited<ReturnType<typeof otherConnection>>;
beforeAll(async () => {
  platform = await startTestPlatform();
  reader = await otherConnection(platform);
});
afterAll(async () => {
  await reader.close();
  await platform.close();
});

type Side = 'page' | 'removal';

/** Every order of `a` steps of the page and `b` of the removal. */
function interleavings(a: number, b: number): Side[][] {
  if (a === 0 || b === 0) return [[...Array<Side>(a).fill('page'), ...Array<Side>(b).fill('removal')]];
  return [...interleavings(a - 1, b).map((rest): Side[] => ['page', ...rest]), ...interleavings(a, b - 1).map((rest): Side[] => ['removal', ...rest])];
}

/**
 * Lets each side's watched steps run only in their turn of `order`, one at a
 * time. A side's steps past its turns run freely, and once a side has
 * finished the other takes its remaining turns at once, so a change of
 * either side's steps shows as a failed check rather than a hang. `taken`
 * names the steps that took a turn, in the order they ran.
 */
class Turns {
  readonly taken: string[] = [];
  private next = 0;
  private busy = false;
  private readonly used = { page: 0, removal: 0 };
  private readonly finished = new Set<Side>();
  private waiting: Array<() => void> = [];

  constructor(private readonly order: readonly Side[]) {}

  async step<T>(side: Side, name: string, op: () => Promise<T>): Promise<T> {
    if (this.used[side] === this.order.filter((s) => s === side).length) return op();
    this.used[side]++;
    while (this.busy || (this.order[this.next] !== side && !this.finished.has(other(side)))) await new Promise<void>((wake) => this.waiting.push(wake));
    this.busy = true;
    try {
      return await op();
    } finally {
      this.taken.push(`${side}: ${name}`);
      this.next++;
      this.busy = false;
      this.wakeAll();
    }
  }

  /** Runs one side to its end; its remaining turns pass to the other. */
  async run(side: Side, work: () => Promise<unknown>): Promise<void> {
    try {
      await work();
    } finally {
      this.finished.add(side);
      this.wakeAll();
    }
  }

  private wakeAll(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const wake of waiting) wake();
  }
}

const other = (side: Side): Side => (side === 'page' ? 'removal' : 'page');

/** A query whose execution waits for its turn. */
function inTurn<Q extends { exec: () => Promise<unknown> }>(query: Q, turns: Turns, side: Side, name: string): Q {
  const exec = query.exec.bind(query);
  query.exec = () => turns.step(side, name, exec);
  return query;
}

/** The same model, these methods in place of its own (each calling the real one). */
function withMethods<M extends object>(model: M, methods: Record<string, unknown>): M {
  return Object.create(model, Object.fromEntries(Object.entries(methods).map(([name, value]) => [name, { value }])));
}

/** A page's models (another process's connection): its reads of the `erasures` stamp, its whole read of the messages and its store of a checkpoint wait for their turns. */
function pageModels(models: Models, turns: Turns): Models {
  const { ChangeStamp, Outbox, EmailChange } = models;
  const collection = EmailChange.collection;
  const replaceOne = (...args: Parameters<typeof collection.replaceOne>) => turns.step('page', 'stores a checkpoint', () => collection.replaceOne(...args));
  return {
    ...models,
    ChangeStamp: withMethods(ChangeStamp, {
      findById: (id: string, ...rest: unknown[]) => {
        const query = ChangeStamp.findById(id, ...(rest as []));
        return id.startsWith('erasures:') ? inTurn(query, turns, 'page', 'reads the erasures stamp') : query;
      },
    }),
    Outbox: withMethods(Outbox, { find: (...args: Parameters<typeof Outbox.find>) => inTurn(Outbox.find(...args), turns, 'page', 'reads the messages whole') }),
    EmailChange: withMethods(EmailChange, { collection: withMethods(collection, { replaceOne }) }),
  };
}

/** The removal's models: its removal of the messages, its move of the `erasures` stamp and its removal of journal documents wait for their turns. */
function removalModels(models: Models, turns: Turns): Models {
  const { ChangeStamp, Outbox, EmailChange } = models;
  return {
    ...models,
    Outbox: withMethods(Outbox, { deleteMany: (...args: Parameters<typeof Outbox.deleteMany>) => inTurn(Outbox.deleteMany(...args), turns, 'removal', 'removes the messages') }),
    ChangeStamp: withMethods(ChangeStamp, {
      updateOne: (...args: Parameters<typeof ChangeStamp.updateOne>) => {
        const query = ChangeStamp.updateOne(...args);
        return String((args[0] as { _id?: unknown })?._id).startsWith('erasures:') ? inTurn(query, turns, 'removal', 'moves the erasures stamp') : query;
      },
    }),
    EmailChange: withMethods(EmailChange, {
      deleteMany: (...args: Parameters<typeof EmailChange.deleteMany>) => inTurn(EmailChange.deleteMany(...args), turns, 'removal', 'removes entries and checkpoint'),
    }),
  };
}

/** A campaign of two contacts whose invitations are queued (and journalled); no page has loaded it yet, so it has no checkpoint. */
async function queuedCampaign() {
  const campaign = await createCampaignWithContacts(platform, { contacts: 2 });
  await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaign.campaignId, 'test');
  return campaign;
}

/** The journal's documents (entries and checkpoints) that name one of these messages. */
async function naming(messageIds: readonly string[]) {
  const all = await platform.models.EmailChange.find({}).lean();
  return all.filter((e) => messageIds.some((id) => [e.m, e.c, e.o].some((names) => names?.includes(id))));
}

const truth = (campaignId: Types.ObjectId) => countByRound({ models: platform.models }, campaignId);

/**
 * Runs the page's first load and `remove` side by side in `order`, then checks
 * that no journal document names `erasedIds`, and that after a later write
 * journalled for the campaign (which a page follows from a checkpoint) the
 * page and a process just started count as a whole read.
 */
async function expectNothingErasedKept(order: Side[], campaignId: Types.ObjectId, erasedIds: string[], remove: (models: Models) => Promise<unknown>) {
  const turns = new Turns(order);
  const page = pageModels(reader.models, turns);
  await Promise.all([turns.run('page', () => sendingFigures({ models: page }, campaignId)), turns.run('removal', () => remove(removalModels(platform.models, turns)))]);
  const steps = turns.taken.join(' → ');
  // Each side took its steps in its turns: the order forced is the one that ran.
  expect(turns.taken.map((step) => step.slice(0, step.indexOf(':'))), steps).toEqual(order);
  expect(await naming(erasedIds), steps).toEqual([]);

  await journalEmailChanges(platform.models, new EmailChanges().add(campaignId));
  const whole = await truth(campaignId);
  expect((await sendingFigures({ models: page }, campaignId)).counts, steps).toEqual(whole);
  const started = await otherConnection(platform);
  try {
    expect((await sendingFigures({ models: started.models }, campaignId)).counts, steps).toEqual(whole);
  } finally {
    await started.close();
  }
}

const orders = interleavings(4, 3);

describe("a retention purge beside a sending page's first load, in every order of their steps", () => {
  it.each(orders.map((order) => [order.join(' ')] as const))('%s: no checkpoint names the purged emails, and the page and a process just started count as a whole read', async (order) => {
    const { campaignId } = await queuedCampaign();
    const erasedIds = (await platform.models.Outbox.find({ campaign: campaignId }, { _id: 1 }).lean()).map((m) => String(m._id));
    expect(erasedIds).toHaveLength(2);
    const retention = { tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions: new Set<string>(), workerId: 'test' };
    await expectNothingErasedKept(order.split(' ') as Side[], campaignId, erasedIds, (models) => purgeCampaign({ ...retention, models }, campaignId));
    expect((await truth(campaignId)).all).toMatchObject({ total: 0 });
  });
});

describe("a person's erasure beside a sending page's first load, in every order of their steps", () => {
  it.each(orders.map((order) => [order.join(' ')] as const))("%s: no checkpoint names the person's emails, and the page and a process just started count as a whole read", async (order) => {
    const { campaignId, contacts } = await queuedCampaign();
    const person = contacts[1]!;
    const erasedIds = (await platform.models.Outbox.find({ campaign: campaignId, to: person.email }, { _id: 1 }).lean()).map((m) => String(m._id));
    expect(erasedIds).toHaveLength(1);
    const privacy = { tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions: new Set<string>() };
    await expectNothingErasedKept(order.split(' ') as Side[], campaignId, erasedIds, (models) => erasePerson({ ...privacy, models }, { email: person.email, mode: 'delete', actor: 'test' }));
    expect((await truth(campaignId)).all).toMatchObject({ total: 1 });
  });
});
