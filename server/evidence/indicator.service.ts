import type { Models } from '../db/models.ts';
import type { Logger } from 'pino';
import { decodeRecord, DEFAULT_EVIDENCE_POLL_MS, flattenerOf, RecordFollower, repairRecord, textQuestionsOf, type AnalyticRecordDoc, type JournalTimings, type LoadResult } from './analytic-record.ts';
import type { CountsOf } from './record-snapshot.ts';
import { countInThread, type CountsFor } from './counts-thread.ts';
import { indexLines, unitDecision, type AnswerCounts, type CountColumn, type CountDecision, type LineIndex } from './count-suppression.ts';
import { decisionSteps, hiddenCountsView } from './evidence-decision.ts';
import type { EvidenceRecord, EvidenceSink } from './evidence-record.ts';
import { EvidenceStore } from './evidence-store.ts';
import { dontKnowCountsOf, isTooSmall, MAX_VIEW_DIMENSIONS, minRangeOf, solveUnknownsOf, type Cell, type Figure, type Line, type Thresholds } from './disclosure.ts';
import { DIMENSION_NAMES, DIMENSIONS, filterKey, type Dimension, type EvidenceFilter } from './evidence-filter.ts';
import { addTally, dontKnowBoxes, emptyTally, groupingKey, groupValues, NOT_STATED, RESPONSES, validKey, viewTables, type GroupTally, type Population, type Tallies } from './evidence-tally.ts';
import { ACCREDITED_STATUSES, bandOf, defineIndicators, distributionOf, indicatorSources, type Band, type Distribution, type IndicatorDef, type IndicatorSet, type Unit } from './indicators.ts';
import { choiceLabel, DONT_KNOW, type AnswerKind, type QuestionCatalogue } from './question-catalogue.ts';

export interface IndicatorFigures {
  value: number | null;
  n: number;
  /** The value is suppressed (null) because an answer count it is computed from is hidden in this cell; n stays published. */
  withheld?: true;
  band?: Band;
  /** Value minus the target, in points (the learner mobility rate against the EU's 12%). */
  targetGap?: number;
}

export interface IndicatorRow {
  code: string;
  family: string;
  label: string;
  unit: Unit;
  target?: number;
  banded: boolean;
  overall: Cell<IndicatorFigures>;
  groups: Record<string, Cell<IndicatorFigures>>;
}

export interface QuestionRow {
  name: string;
  strand: string;
  indicator: string;
  kind: AnswerKind;
  title: string;
  overall: Cell<Distribution>;
  groups: Record<string, Cell<Distribution>>;
}

export interface GroupColumn {
  key: string;
  label: string;
}

/** Everything the evidence pages and exports show for one filter, disclosure control applied. */
export interface EvidenceTables {
  filter: EvidenceFilter;
  /** Responses in the view; null when that count is suppressed (it is a figure like any other, protected as one). */
  responses: number | null;
  /** Responses per group of the breakdown, null where suppressed. */
  groupResponses: Record<string, number | null>;
  dimensions: Dimension[];
  columns: GroupColumn[];
  indicators: IndicatorRow[];
  questions: QuestionRow[];
  /** Questions with at least one counted answer in the whole campaign (never a filtered group's): what a campaign asked. */
  answered: string[];
  thresholds: Thresholds;
}

export interface EvidenceDeps {
  models: Pick<Models, 'Response' | 'AnalyticRecord' | 'EvidenceJournal' | 'EvidenceFollower' | 'EvidenceSnapshot' | 'EvidenceSnapshotBucket' | 'InstitutionSecret'>;
  catalogue: QuestionCatalogue;
  /** Opens the campaigns' institution tag secrets, for records repaired from their responses. */
  tagKey: Buffer;
  thresholds: Thresholds;
  /**
   * Feeds records to the sink in place of the stored ones (benchmarks without
   * a database): campaigns asked for, null for every campaign. Nothing is
   * followed then.
   */
  load?: (sink: EvidenceSink, campaigns: string[] | null) => Promise<void>;
  /** How often other processes' records are looked for (EVIDENCE_POLL_MS), pages' bound for showing them; 0: only when refresh() is called. */
  pollMs?: number;
  /**
   * The least time from a decision's start to the start of one taken ahead of
   * pages (EVIDENCE_DECISION_GAP_MS; default DEFAULT_DECISION_GAP_MS). A page
   * that waits for this process's own change never waits for it.
   */
  decisionGapMs?: number;
  /** How long an intent may stay open, the followers' lease and how often to compact the journal (analytic-record.ts; tests shorten them). */
  journal?: JournalTimings;
  /** Progress of the first load, and errors of the follower. */
  logger?: Pick<Logger, 'info' | 'warn'>;
  /** How long a slice of a disclosure decision may hold the event loop before others' turn (ms; 0: one step a slice, as tests take it). */
  decisionSliceMs?: number;
  /** Called between a decision's slices; the next slice waits for what it returns (tests hold a decision under way with it). */
  betweenSlices?: () => Promise<void> | undefined;
}

/** How long after a page last asked for a campaign its decision is still taken ahead of the next page (decideAhead). */
const ASKED_RECENTLY_MS = 60_000;

/** How many filters' tables are kept, the most recently asked for (EvidenceService.filtersAsked). */
export const FILTERS_KEPT = 16;

/** How long a slice of a disclosure decision holds the event loop by default: a page asked meanwhile waits at most this long for its turn. */
const DECISION_SLICE_MS = 8;

/**
 * The pace of decisions taken ahead of pages, from one's start to the next's:
 * while responses keep coming they do not follow one another back to back, and
 * a response still shows within the longest of the poll, this gap and the
 * decision under way, plus its own decision (README, "Bound").
 */
export const DEFAULT_DECISION_GAP_MS = 500;

/** A disclosure decision under way, in slices (EvidenceService.startDecision). */
interface DecisionRun {
  scope: string;
  /** The counts' version it decides (the counts do not change until it ends: changes are held back). */
  version: number;
  /** This process's changes counted before it started: all of them are in it. */
  own: number;
  /**
   * Filters pages wait for: their tables are built from it first, each page
   * answered as soon as its own are, before the tables of the other filters
   * shown lately (and before the changes held meanwhile are let in).
   */
  waiting: Map<string, { filter: EvidenceFilter; answer: Promise<EvidenceTables>; resolve: (tables: EvidenceTables) => void; reject: (error: Error) => void }>;
  /** Ends once the decision is published and the changes held back are let in. */
  done: Promise<void>;
}

/**
 * Computes indicators and distributions from counts kept in memory
 * (evidence-store.ts). The analytic records are loaded once (streamed), then
 * the counts are kept current record by record: by the respondent path in
 * this process at once (apply), and by following the records journal for
 * what other processes store (a second instance, the CLI, seed:demo), polled
 * every EVIDENCE_POLL_MS. A page reads nothing from the database: it shows
 * the counts as they are, so another process's response is in it within one
 * poll. The disclosure decision is taken again from the counts only when
 * they changed: after a poll that brought changes once, ahead of the next
 * page, for the campaigns pages asked for lately; after a change made in
 * this process, by the next page. A view's tables are built from the cells
 * it shows.
 *
 * A decision takes hundreds of milliseconds of CPU, so it is taken in
 * slices (evidence-decision.ts decisionSteps), other work running between
 * them. Meanwhile the counts stay as they were when it started: records
 * applied by the follower or by this process are held back and let in when
 * it ends, after the tables of the filters shown lately are built from it;
 * a page waiting for it is answered once its own tables are, before the
 * others' (their building is no part of its wait). A page asked meanwhile is served the last tables built for its filter if
 * they are the last decided pair of counts and decision and hold every
 * change this process made (another process's records show with the next
 * decision, within the follower's bound); otherwise it waits for a decision
 * that holds them.
 */
export class EvidenceService implements EvidenceSink {
  readonly indicatorSet: IndicatorSet;
  private readonly store: EvidenceStore;
  private readonly follower: RecordFollower | undefined;
  private loading: Promise<void> | undefined;
  /** Per campaign scope: the decision for its counts' version. */
  private readonly decisions = new Map<string, { version: number; decision: Disclosure }>();
  /** Published tables per filter, for its campaign scope's counts' version they were made from, and this process's changes (own) they hold. */
  private readonly built = new Map<string, { scope: string; version: number; own: number; tables: EvidenceTables }>();
  /**
   * When each filter's tables were last asked for, least recently first: at
   * most FILTERS_KEPT, whose tables are kept (built) and, when asked for
   * within ASKED_RECENTLY_MS, made again after each decision. Every filter
   * shown was kept and made again after every decision of its campaign:
   * after 175 cross-tabs at 50,000 responses, ~170 MB of tables, and a
   * decision after one response made 175 views' tables.
   */
  private readonly filtersAsked = new Map<string, number>();
  /** The decision under way, and the changes held back until it ends (records meanwhile go to `gate`). */
  private running: DecisionRun | undefined;
  private readonly held: Array<() => void> = [];
  private readonly gate: EvidenceSink;
  /** Changes made by this process (apply, remove): a page shows every one made before it was asked. */
  private own = 0;
  /** Scopes whose decision is wanted soon (decideSoon), each queued once. */
  private readonly wanted = new Set<string>();
  /** When the last decision started (its pace, decisionGapMs), and the pause of the decisions waiting for it, cut short by close(). */
  private lastDecisionAt = -Infinity;
  private pause: { ended: Promise<void>; end: () => void } | undefined;
  private closed = false;
  private reloading = false;
  /** The campaign scopes pages asked for, and when last: their decisions are taken ahead after a poll, the others' forgotten. */
  private readonly asked = new Map<string, { campaigns: string[]; at: number }>();
  /** Disclosure decisions taken since the start (each ~300 ms of CPU at 5,000 responses): what benchmarks and tests count. */
  decisionsTaken = 0;
  /** Slices decisions were taken in, and pages served the last decided tables while a decision was under way (benchmarks and tests count them). */
  decisionSlices = 0;
  pagesServedMeanwhile = 0;

  constructor(private readonly deps: EvidenceDeps) {
    this.indicatorSet = defineIndicators(deps.catalogue);
    const spec = {
      catalogue: deps.catalogue,
      ratios: this.indicatorSet.ratios,
      indicatorsOf: this.indicatorSet.indicatorsOf,
      institutionCap: deps.thresholds.minInstitutions,
      accredited: ACCREDITED_STATUSES,
    };
    this.store = new EvidenceStore(spec, viewTables());
    const hold = (change: () => void) => (this.running ? this.held.push(change) : change());
    this.gate = {
      apply: (record) => hold(() => this.store.apply(record)),
      remove: (id) => hold(() => this.store.remove(id)),
    };
    const flatten = flattenerOf(deps.catalogue);
    const decode = (doc: AnalyticRecordDoc) => decodeRecord(doc, flatten);
    // A snapshot's counts are made in a store of their own (the builder's records are not this store's, which is further on), in a thread of their own.
    const target: CountsFor = { catalogue: deps.catalogue, institutionCap: deps.thresholds.minInstitutions };
    this.countsImage = (buckets) => {
      // One counting thread at a time (a build is one at a time already; this holds for callers besides the follower too).
      const made = this.counting.then(() => countInThread(target, buckets));
      this.counting = made.catch(() => undefined);
      return made.then(
        (counts) => {
          this.lastCounts = { threadId: counts.threadId, bytes: counts.image?.length ?? 0 };
          return counts.image;
        },
        (error: unknown) => {
          // Built without counts: a load counts its records then, as for a snapshot made before counts were kept.
          deps.logger?.warn({ err: error }, 'counting the snapshot in a worker thread failed; it is kept without counts');
          return null;
        },
      );
    };
    if (!deps.load) {
      this.follower = new RecordFollower(deps.models, this.gate, decode, 0, {
        ...deps.journal,
        pollMs: deps.pollMs || DEFAULT_EVIDENCE_POLL_MS,
        onError: (error) => deps.logger?.warn({ err: error }, 'following the evidence records failed; trying again at the next poll'),
        repair: (id) => repairRecord(deps.models, deps.tagKey, id, textQuestionsOf(deps.catalogue)),
        counts: { image: this.countsImage, restore: (image) => this.store.restore(image) },
        polled: () => this.decideAhead(),
      });
    }
  }

  /** The counts of a generation's buckets, as a snapshot keeps them (record-snapshot.ts buildSnapshot's countsOf), made in a worker thread. */
  readonly countsImage: CountsOf;
  private counting: Promise<unknown> = Promise.resolve();
  /** The last counts made for a snapshot: by which thread, and their size. */
  lastCounts: { threadId: number; bytes: number } | undefined;

  /** How the last load went (records, and whether from the snapshot and its counts). */
  lastLoad: LoadResult | undefined;

  get catalogue(): QuestionCatalogue {
    return this.deps.catalogue;
  }

  get thresholds(): Thresholds {
    return this.deps.thresholds;
  }

  /** Records kept in memory. */
  get records(): number {
    return this.store.size;
  }

  /** A record stored or changed by this process: counted at once (through the follower, which notes the ids it holds), or when the decision under way ends. */
  apply(record: EvidenceRecord): void {
    this.own += 1;
    (this.follower?.tracking ?? this.gate).apply(record);
  }

  /** A response deleted by this process. */
  remove(id: string): void {
    this.own += 1;
    (this.follower?.tracking ?? this.gate).remove(id);
  }

  /** Whether a decision taken ahead of pages waits for its pace (decisionGapMs). */
  get pacing(): boolean {
    return this.pause !== undefined;
  }

  /** Whether a disclosure decision is under way (its slices not all taken). */
  get deciding(): boolean {
    return this.running !== undefined;
  }

  /** What an erasure, retention or demo-data removal did to the records. */
  changed = (change: { written?: readonly EvidenceRecord[]; removed?: readonly string[] }): void => {
    for (const record of change.written ?? []) this.apply(record);
    for (const id of change.removed ?? []) this.remove(id);
  };

  /** Loads every record again on the next page (a change no record told of). */
  invalidate = (): void => {
    this.loading = undefined;
  };

  /**
   * Loads the records once (a process's start calls it rather than wait for
   * the first page), then follows other processes' records.
   */
  ready(everyCampaign = false): Promise<void> {
    if (everyCampaign && !this.store.keepsEveryRecord) {
      this.store.keepEveryRecord();
      this.loading = undefined;
    }
    if (!this.loading) {
      const loading = this.load();
      this.loading = loading;
      loading.catch(() => this.loading === loading && (this.loading = undefined));
    }
    return this.loading;
  }

  private async load(): Promise<void> {
    this.reloading = true;
    try {
      // A decision under way reads these counts: they are cleared once it ended.
      while (this.running) await this.running.done.catch(() => undefined);
      // Versions start again with the new counts: what was decided and built from the old ones is let go.
      this.decisions.clear();
      this.built.clear();
      await this.loadRecords();
    } finally {
      this.reloading = false;
    }
  }

  private async loadRecords(): Promise<void> {
    if (this.deps.load) {
      this.store.clear();
      await this.deps.load(this.store, null);
      this.store.settle();
      return;
    }
    const started = Date.now();
    // Emptied once no poll is under way (a poll's records would otherwise reach the emptied counts, or be counted twice).
    const loaded = await this.follower!.load(
      (count) => this.deps.logger?.info({ loaded: count }, 'loading the evidence records'),
      undefined,
      () => this.store.clear(),
    );
    // Records are counted in bulk (evidence-store.ts settle): done here, as part of the load, not on the first page.
    this.store.settle();
    this.lastLoad = loaded;
    this.deps.logger?.info({ records: loaded.records, fromSnapshot: loaded.fromSnapshot ?? false, fromCounts: loaded.fromCounts ?? false, ms: Date.now() - started }, 'evidence records loaded');
    if (this.deps.pollMs !== 0 && !this.closed) this.follower!.start();
  }

  /**
   * Brings in what other processes stored before this call, now (the
   * follower does it by itself every pollMs), and decides the scopes pages
   * asked for with them, so that the next page shows them. A poll already
   * under way may have passed the journal's end before those records were
   * written: then one more.
   */
  async refresh(): Promise<void> {
    await this.ready();
    if (!this.follower) return;
    const joined = this.follower.polling;
    await this.follower.poll();
    if (joined) await this.follower.poll();
    for (;;) {
      // Records the poll brought during a decision are held back until it ends.
      while (this.running) await this.running.done.catch(() => undefined);
      const behind = [...this.asked.values()].find(({ campaigns }) => this.decisions.get(scopeKey(campaigns))?.version !== this.store.scope(campaigns).version);
      if (!behind) return;
      await this.startDecision(behind.campaigns).done;
    }
  }

  /** A page asked for the filter's tables now: the most recent of the FILTERS_KEPT filters whose tables are kept. */
  private filterAsked(key: string): void {
    this.filtersAsked.delete(key);
    this.filtersAsked.set(key, Date.now());
    for (const oldest of this.filtersAsked.keys()) {
      if (this.filtersAsked.size <= FILTERS_KEPT) break;
      this.filtersAsked.delete(oldest);
      this.built.delete(oldest);
    }
  }

  /** How many filters' tables are kept (tests). */
  get filtersKept(): number {
    return this.built.size;
  }

  /** Stops following (a process's end, a test's). */
  async close(): Promise<void> {
    this.closed = true;
    this.pause?.end();
    await this.follower?.stop();
  }

  /**
   * The tables for the filter's campaign, restricted to its profile values,
   * broken down as it asks (overall only when it does not): built from the
   * counts and the decision taken for them, as one pair.
   */
  async tables(filter: EvidenceFilter): Promise<EvidenceTables> {
    await this.ready(filter.campaigns.length === 0);
    const scope = scopeKey(filter.campaigns);
    this.asked.set(scope, { campaigns: filter.campaigns, at: Date.now() });
    const key = filterKey(filter);
    this.filterAsked(key);
    for (;;) {
      const counts = this.store.scope(filter.campaigns);
      const version = counts.version;
      const cached = this.built.get(key);
      const known = this.decisions.get(scope);
      const run = this.running;
      // This process's changes are all in the counts unless some are held back by the decision under way.
      const ownHeld = run !== undefined && run.own !== this.own;
      if (cached && cached.version === version && !ownHeld) return cached.tables;
      if (cached && cached.version === known?.version && cached.own === this.own) {
        // The last decided pair, while the decision of what came since is under way or due.
        if (run) this.pagesServedMeanwhile += 1;
        else void this.decideSoon(filter.campaigns);
        return cached.tables;
      }
      if (!run && known?.version === version) {
        const tables = buildTablesFrom(this.deps.catalogue, this.indicatorSet, known.decision, filter, this.deps.thresholds);
        this.built.set(key, { scope, version, own: this.own, tables });
        return tables;
      }
      // Its tables built with the decision under way (or started now), which decides the counts as they are now.
      if (!run) return waitFor(this.startDecision(filter.campaigns), key, filter);
      if (run.scope === scope && !ownHeld) return waitFor(run, key, filter);
      await run.done.catch(() => undefined);
    }
  }

  /**
   * After a poll: the decisions of the scopes pages asked for lately are
   * taken again where the poll changed their counts, once for all it
   * brought, so that the next page finds its decision made; the published
   * decisions and tables of scopes no page asked for lately are let go (the
   * decision's kept state stays with the counts, evidence-decision.ts, so a
   * later page still decides from the last decision, not from scratch).
   */
  private decideAhead(): void {
    const now = Date.now();
    // The tables of filters no page asked for lately are let go (a page that asks again has them made from the decision).
    for (const [key, at] of this.filtersAsked) {
      if (now - at <= ASKED_RECENTLY_MS) break;
      this.filtersAsked.delete(key);
      this.built.delete(key);
    }
    for (const [scope, { campaigns, at }] of this.asked) {
      if (now - at <= ASKED_RECENTLY_MS) {
        void this.decideSoon(campaigns);
        continue;
      }
      this.asked.delete(scope);
      this.decisions.delete(scope);
      for (const [key, built] of this.built) if (built.scope === scope) this.built.delete(key);
    }
  }

  /**
   * The scope's decision taken once the one under way ended and its pace
   * (decisionGapMs from the last decision's start) passed, unless it is taken
   * for its counts by then; polls and pages meanwhile coalesced.
   */
  private async decideSoon(campaigns: string[]): Promise<void> {
    const scope = scopeKey(campaigns);
    if (this.wanted.has(scope)) return;
    this.wanted.add(scope);
    try {
      // On a turn of its own (a poll's caller goes on first), after the decision under way.
      await new Promise((resolve) => setImmediate(resolve));
      for (;;) {
        while (this.running) await this.running.done.catch(() => undefined);
        // What the poll under way brings (the one a decision's end starts, followAfterDecision) goes into this decision, not behind it.
        if (this.follower?.polling) {
          await this.follower.poll().catch(() => undefined);
          continue;
        }
        if (this.closed || this.reloading || this.decisions.get(scope)?.version === this.store.scope(campaigns).version) return;
        const wait = this.lastDecisionAt + (this.deps.decisionGapMs ?? DEFAULT_DECISION_GAP_MS) - performance.now();
        if (wait <= 0) break;
        // What comes during the pause goes into this decision too; a page's own decision meanwhile may make it needless.
        await this.paced(wait);
      }
      await this.startDecision(campaigns).done;
    } catch (error) {
      // Off any request: the next page takes the decision itself, and shows the error if there is one.
      this.deps.logger?.warn({ err: error, campaigns }, 'taking the disclosure decision ahead of the next page failed');
    } finally {
      this.wanted.delete(scope);
    }
  }

  /**
   * Takes the scope's decision for its counts as they are, in slices of
   * decisionSliceMs on turns of their own; changes meanwhile are held back
   * (gate). Then the tables of the filters that wait for it are built from
   * it, each page answered once its own are, then those of the other
   * filters shown from its scope, in slices too; then the decision is kept
   * and the changes held are let in. Only when no decision is under way.
   */
  private startDecision(campaigns: string[]): DecisionRun {
    if (this.running) throw new Error('a disclosure decision is under way');
    const scope = scopeKey(campaigns);
    const counts = this.store.scope(campaigns);
    const version = counts.version;
    const steps = decisionSteps(counts, disclosureUnits(this.deps.catalogue, this.indicatorSet), this.deps.thresholds, {
      sidesOf: (question, keys) => answerSides(this.deps.catalogue, this.indicatorSet, question, keys),
    });
    const sliceMs = this.deps.decisionSliceMs ?? DECISION_SLICE_MS;
    const run: DecisionRun = { scope, version, own: this.own, waiting: new Map(), done: undefined as never };
    this.running = run;
    this.lastDecisionAt = performance.now();
    run.done = new Promise((resolve, reject) => {
      let decision: Disclosure | undefined;
      // The filters waiting for it, then those shown lately from its scope, each with tables not made from it yet.
      const nextFilter = (): [string, EvidenceFilter] | undefined => {
        for (const [key, { filter }] of run.waiting) return [key, filter];
        const recently = Date.now() - ASKED_RECENTLY_MS;
        for (const [key, built] of this.built) if (built.scope === scope && built.version !== version && (this.filtersAsked.get(key) ?? -Infinity) >= recently) return [key, built.tables.filter];
        return undefined;
      };
      const later = () => {
        const pause = this.deps.betweenSlices?.();
        if (pause) void pause.finally(() => setImmediate(slice));
        else setImmediate(slice);
      };
      const slice = () => {
        try {
          const until = performance.now() + sliceMs;
          this.decisionSlices += 1;
          // Each slice takes one step at least, whatever its length.
          let stepped = false;
          if (!decision) {
            let step = steps.next();
            while (!step.done && performance.now() < until) step = steps.next();
            if (!step.done) return later();
            decision = step.value;
            this.decisionsTaken += 1;
            stepped = true;
          }
          // The tables are made too before the counts move on, a filter a slice, so that the next page finds them: a waiting
          // page is answered as soon as its own are made; a page asked meanwhile gets them once made, the last decided pair
          // until then (the decision is published at the end).
          for (let next = nextFilter(); next; next = nextFilter()) {
            if (stepped && performance.now() >= until) return later();
            stepped = true;
            const [key, wanted] = next;
            const made = buildTablesFrom(this.deps.catalogue, this.indicatorSet, decision, wanted, this.deps.thresholds);
            // Kept only for a filter still among those asked for last (a page waiting for one let go meanwhile gets its tables all the same).
            if (this.filtersAsked.has(key)) this.built.set(key, { scope, version, own: run.own, tables: made });
            const page = run.waiting.get(key);
            run.waiting.delete(key);
            page?.resolve(made);
          }
          this.decisions.set(scope, { version, decision });
          this.letIn();
          resolve();
        } catch (error) {
          this.letIn();
          for (const page of run.waiting.values()) page.reject(error as Error);
          run.waiting.clear();
          reject(error as Error);
        }
      };
      setImmediate(slice);
    });
    // Its failure reaches the pages waiting for it (above) and the callers that await it; a page may await none.
    run.done.catch(() => undefined);
    return run;
  }

  /** Waits for a decision's pace to pass (every scope's decideSoon waits for the same pause), or for close(). */
  private paced(ms: number): Promise<void> {
    if (!this.pause) {
      let end!: () => void;
      const ended = new Promise<void>((resolve) => (end = resolve));
      const timer = setTimeout(() => this.pause?.end(), ms).unref();
      this.pause = {
        ended,
        end: () => {
          clearTimeout(timer);
          this.pause = undefined;
          end();
        },
      };
    }
    return this.pause.ended;
  }

  /** Ends the decision under way: the changes held back meanwhile go into the counts, in the order they came. */
  private letIn(): void {
    this.running = undefined;
    for (const change of this.held.splice(0)) {
      try {
        change();
      } catch (error) {
        // A record the counts cannot take is a fault of the counts: logged, and the changes after it still go in (reload: invalidate).
        this.deps.logger?.warn({ err: error }, 'a record held back during a disclosure decision could not be counted');
      }
    }
    this.followAfterDecision();
  }

  /**
   * Right after a decision, the journal is read for what other processes
   * stored while it was under way (one look-up when nothing came), and the
   * next decision waits for that read (decideSoon): such a record goes into
   * the next decision, where it waited for the next poll before, and, found
   * during that decision, for one more. While records keep coming, decisions
   * follow one another at the pace of decisionGapMs; the first poll that
   * brings nothing ends the chain.
   */
  private followAfterDecision(): void {
    if (!this.follower?.following || this.reloading) return;
    this.follower.poll().catch((error: unknown) => this.deps.logger?.warn({ err: error }, 'following the evidence records failed; trying again at the next poll'));
  }
}

/** The page of a filter waiting for a decision under way: answered once its tables are built from it (EvidenceService.startDecision). */
function waitFor(run: DecisionRun, key: string, filter: EvidenceFilter): Promise<EvidenceTables> {
  let page = run.waiting.get(key);
  if (!page) {
    let resolve!: (tables: EvidenceTables) => void;
    let reject!: (error: Error) => void;
    const answer = new Promise<EvidenceTables>((yes, no) => ((resolve = yes), (reject = no)));
    run.waiting.set(key, (page = { filter, answer, resolve, reject }));
  }
  return page.answer;
}

/** A campaign scope's key: its campaigns' ids, or '' for every campaign together. */
const scopeKey = (campaigns: readonly string[]) => campaigns.join(',');

/**
 * Derives the published tables from the counts: values, bands, and the
 * campaign's one disclosure decision (disclosureOf) applied to every figure.
 *
 * Every figure shown is a cell of a campaign's table over some set of
 * dimensions: the overall figure of a filter (country = AT, role = head) is the
 * AT × head cell of the country × role table; its breakdown by size is a slice
 * of the country × role × size table. The decision is taken once for all those
 * tables together, so a cell hidden in one view is hidden in every view that
 * shows it, and a filter cannot reveal what a breakdown suppressed.
 */
export function buildTables(
  catalogue: QuestionCatalogue,
  set: IndicatorSet,
  tallies: Tallies,
  filter: EvidenceFilter,
  thresholds: Thresholds,
): EvidenceTables {
  return buildTablesFrom(catalogue, set, disclosureOf(catalogue, set, tallies, thresholds), filter, thresholds);
}

/**
 * A suppressed cell, one object for all of them: most cells of a view by two
 * dimensions are suppressed, and the tables of the views shown lately are
 * made again after every decision. Frozen: nothing may write into a built
 * table.
 */
const SUPPRESSED_CELL: { suppressed: true } = Object.freeze({ suppressed: true as const });

/** The published tables of a filter, from a campaign's counts and its disclosure decision (either engine). */
export function buildTablesFrom(catalogue: QuestionCatalogue, set: IndicatorSet, decision: Disclosure, filter: EvidenceFilter, thresholds: Thresholds): EvidenceTables {
  const dimensions = filter.breakdown;
  const whereDims = filterDimensions(filter);
  const whereValue = (d: Dimension) => filter.where[d]![0]!;
  const cellDims = canonicalDimensions([...whereDims, ...dimensions]);
  if (cellDims.length > MAX_VIEW_DIMENSIONS) throw new Error(`a view combines at most ${MAX_VIEW_DIMENSIONS} dimensions`);
  const source = decision.source;
  const sources = indicatorSources(set, catalogue);

  const overallKey = whereDims.map(whereValue).join('|');
  const overallTally = source.cells(whereDims).get(overallKey) ?? emptyTally();
  const overallCell = decision.cellNumber(cellId(whereDims, overallKey));
  // The breakdown's groups within the filter: view key (breakdown order) → cell key (canonical order).
  const groupKeys: Array<[string, string]> = [];
  if (dimensions.length > 0) {
    for (const key of source.cells(cellDims).keys()) {
      const parts = groupValues(key);
      const valueOf = (d: Dimension) => parts[cellDims.indexOf(d)]!;
      if (whereDims.some((d) => valueOf(d) !== whereValue(d))) continue;
      groupKeys.push([dimensions.map(valueOf).join('|'), key]);
    }
  }
  const rankOf = groupRanks(catalogue, dimensions);
  const ranks = new Map(groupKeys.map(([key]) => [key, rankOf(key)]));
  groupKeys.sort(([a], [b]) => compareRanks(ranks.get(a)!, ranks.get(b)!));
  const groupTallies = source.cells(cellDims);
  const responsesHidden = decision.hidden.get(RESPONSES_FIGURE)!;
  // Each group's cell number and tally once for every figure.
  const groups = groupKeys.map(([viewKey, key]) => {
    const tally = groupTallies.get(key);
    return { viewKey, cell: decision.cellNumber(cellId(cellDims, key)), tally, kept: tally && keptCellsOf(tally) };
  });
  const overallKept = keptCellsOf(overallTally);
  // A filter nobody's responses match answers as a suppressed one does: "0 responses" would tell the two apart.
  const overallShown = whereDims.length === 0 || overallTally.responses > 0;

  const view = <T extends object>(figure: string, cellOf: (tally: GroupTally, cell: number, kept: KeptCells) => Cell<T>) => {
    const hidden = decision.hidden.get(figure)!;
    const published = (cell: number, tally: GroupTally | undefined, kept: KeptCells | undefined): Cell<T> => (tally && kept && !hidden.at(cell) ? cellOf(tally, cell, kept) : SUPPRESSED_CELL);
    // A loop, not Object.fromEntries over pairs: a view by two dimensions has thousands of cells, built again after every decision.
    const byGroup: Record<string, Cell<T>> = {};
    for (const { viewKey, cell, tally, kept } of groups) byGroup[viewKey] = published(cell, tally, kept);
    return { overall: overallShown ? published(overallCell, overallTally, overallKept) : SUPPRESSED_CELL, groups: byGroup };
  };

  const indicators = set.indicators.map((def): IndicatorRow => {
    const asked = withheldViews(decision.counts, sources.get(def.code) ?? []);
    const compute = (t: GroupTally) => def.compute(t).value;
    const make = (tally: GroupTally, withheld: WithheldCounts): Cell<IndicatorFigures> => {
      const cell = indicatorCell(def, tally, thresholds);
      // A share or mean of answers times its n would give back a hidden count when the hidden counts beside it weigh differently in it.
      if (cell.suppressed || !withheld.some((keys) => splits(def, compute, keys.question, keys.hidden ?? []))) return cell;
      const { band: _band, targetGap: _gap, ...rest } = cell;
      return { ...rest, value: null, withheld: true };
    };
    return {
      code: def.code,
      family: def.family,
      label: def.label,
      unit: def.unit,
      ...(def.target !== undefined ? { target: def.target } : {}),
      banded: def.banded ?? false,
      ...view(indicatorFigure(def), (tally, cell, kept) => keptCell(kept, tally, def, thresholds, asked, cell, make)),
    };
  });

  const questions = shownQuestions(catalogue).map((q): QuestionRow => {
    const asked = withheldViews(decision.counts, [q.name]);
    const make = (tally: GroupTally, [keys]: WithheldCounts): Cell<Distribution> => {
      const withheld = keys!.hidden;
      const population = tally.populations.get(q.name);
      if (!population || isTooSmall([population], thresholds)) return { suppressed: true };
      const distribution = derived(tally, q, () => distributionOf(q, tally));
      return { suppressed: false, ...(withheld ? withholdCounts(distribution, withheld, splits(q, (t) => distributionOf(q, t).topShare, q.name, withheld)) : distribution) };
    };
    const published = (tally: GroupTally, cell: number, kept: KeptCells): Cell<Distribution> => keptCell(kept, tally, q, thresholds, asked, cell, make);
    return { name: q.name, strand: q.strand, indicator: q.indicator, kind: q.kind, title: q.title.default, ...view(questionFigure(q.name), published) };
  });

  const responsesOf = (cell: number, tally: GroupTally | undefined) => (tally && !responsesHidden.at(cell) ? tally.responses : null);
  // What the campaign asked: read from the whole campaign, never from a filtered group (which would tell whether a small group answered).
  const campaignTally = source.cells([]).get('') ?? emptyTally();
  const order = new Map(catalogue.questions.map((q, i) => [q.name, i]));
  const answered = responsesHidden.has(cellId([], '')) ? [] : [...campaignTally.questions.keys()].sort((a, b) => (order.get(a) ?? 1e9) - (order.get(b) ?? 1e9));
  // A group with nothing published is not listed: listed, even as suppressed, it would tell that it has a
  // response, and on sparse data those lower bounds, line by line, give back hidden numbers of responses
  // (README, "That a group exists is not published"). A group listed with its number of responses hidden
  // shows a figure whose respondents (at least the threshold) say more than that already.
  const listed = new Set(
    groups
      .filter(({ viewKey, cell, tally }) => responsesOf(cell, tally) !== null || indicators.some((row) => !row.groups[viewKey]!.suppressed) || questions.some((row) => !row.groups[viewKey]!.suppressed))
      .map(({ viewKey }) => viewKey),
  );
  const only = <T>(byGroup: Record<string, T>) => Object.fromEntries(Object.entries(byGroup).filter(([key]) => listed.has(key)));
  return {
    filter,
    responses: overallShown ? responsesOf(overallCell, overallTally) : null,
    groupResponses: Object.fromEntries(groups.filter(({ viewKey }) => listed.has(viewKey)).map(({ viewKey, cell, tally }) => [viewKey, responsesOf(cell, tally)])),
    dimensions,
    columns: groupKeys.filter(([key]) => listed.has(key)).map(([key]) => ({ key, label: groupLabel(catalogue, dimensions, key) })),
    indicators: listed.size === groups.length ? indicators : indicators.map((row) => ({ ...row, groups: only(row.groups) })),
    questions: listed.size === groups.length ? questions : questions.map((row) => ({ ...row, groups: only(row.groups) })),
    answered,
    thresholds,
  };
}

/** The questions whose distributions are shown: not profile, not free text, not a separate "don't know" box (counted in its question). */
export function shownQuestions(catalogue: QuestionCatalogue) {
  const boxes = dontKnowBoxes(catalogue);
  return catalogue.questions.filter((q) => q.kind !== 'text' && q.strand !== 'P' && !boxes.has(q.name));
}

/** The dimensions a filter restricts, in canonical order (one value each: see filterSchema). */
export function filterDimensions(filter: Pick<EvidenceFilter, 'where'>): Dimension[] {
  return DIMENSION_NAMES.filter((d) => (filter.where[d]?.length ?? 0) > 0);
}

/** A table over a set of dimensions is the same table whichever view asks for it: its dimensions in one order. */
function canonicalDimensions(dimensions: Iterable<Dimension>): Dimension[] {
  const wanted = new Set(dimensions);
  return DIMENSION_NAMES.filter((d) => wanted.has(d));
}

/** A cell's id across all the tables of a campaign. */
export const cellId = (dimensions: readonly Dimension[], key: string) => `${groupingKey(dimensions)}#${key}`;

/** The groups of a table over any dimensions the tallies can give: counted directly, or added up from a finer grouping. */
export class TableSource {
  private readonly made = new Map<string, Map<string, GroupTally>>();

  constructor(
    private readonly tallies: Tallies,
    private readonly institutionCap: number,
  ) {}

  cells(dimensions: Dimension[]): Map<string, GroupTally> {
    const id = groupingKey(dimensions);
    const direct = this.tallies.groupings.get(id)?.groups;
    if (direct) return direct;
    let made = this.made.get(id);
    if (made) return made;
    const finer = [...this.tallies.groupings.values()].find((g) => dimensions.every((d) => g.dimensions.includes(d)));
    if (!finer) throw new Error(`no counts by ${id}`);
    const positions = dimensions.map((d) => finer.dimensions.indexOf(d));
    made = new Map();
    for (const [key, tally] of finer.groups) {
      const parts = groupValues(key);
      const coarse = positions.map((p) => parts[p]).join('|');
      let target = made.get(coarse);
      if (!target) made.set(coarse, (target = emptyTally()));
      addTally(target, tally, this.institutionCap);
    }
    this.made.set(id, made);
    return made;
  }
}

/** The cells of every table a view can show, and their lines: cells differing in one dimension, with the cell of the table without it as total. */
export function latticeOf(source: Disclosure['source']): { cells: Map<string, GroupTally>; lines: Line[] } {
  const cells = new Map<string, GroupTally>();
  const lines: Line[] = [];
  for (const dimensions of viewTables()) {
    const table = source.cells(dimensions);
    const keys = [...table.keys()].sort(byCodeUnits);
    for (const key of keys) cells.set(cellId(dimensions, key), table.get(key)!);
    dimensions.forEach((_, axis) => {
      const rest = dimensions.filter((__, i) => i !== axis);
      const members = new Map<string, string[]>();
      for (const key of keys) {
        const restKey = groupValues(key)
          .filter((__, i) => i !== axis)
          .join('|');
        members.set(restKey, [...(members.get(restKey) ?? []), cellId(dimensions, key)]);
      }
      for (const [restKey, keys] of members) lines.push({ total: cellId(rest, restKey), members: keys });
    });
  }
  return { cells, lines };
}

/** Strings in code-unit order (what `<` compares): the one order of cells. */
export const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export const RESPONSES_FIGURE = 'responses';
const indicatorFigure = (def: IndicatorDef) => `indicator:${def.code}`;
const questionFigure = (name: string) => `question:${name}`;

/**
 * The campaign's disclosure decision: per figure, its hidden cells; per
 * question, the answer counts hidden in its published cells. A cell is named
 * by its id, or by its number in the decision's lattice (cellNumber, -1 for a
 * cell outside it, which has no records): a table looks each group's number
 * up once and reads every figure's cell by it, where an id was hashed and
 * compared again for each of the page's thousands of cells.
 */
export interface Disclosure {
  source: { cells(dimensions: Dimension[]): CellLookup };
  cellNumber(cellId: string): number;
  hidden: Map<string, HiddenCells>;
  counts: HiddenCounts;
}

/** A figure's hidden cells, by id or by number (Disclosure.cellNumber). */
export interface HiddenCells {
  has(cellId: string): boolean;
  at(cell: number): boolean;
}

/** A question's answer counts hidden in a published cell (their keys; see count-suppression.ts), by cell id or by number. */
export interface HiddenCountsOfQuestion {
  of(cellId: string): ReadonlySet<string> | undefined;
  at(cell: number): ReadonlySet<string> | undefined;
}

/** Per question, the keys of the answer counts hidden in a published cell. */
export type HiddenCounts = Map<string, HiddenCountsOfQuestion>;

/** The groups of one table: their keys, and each one's counts. */
export interface CellLookup {
  keys(): Iterable<string>;
  get(key: string): GroupTally | undefined;
}

/** One figure of a disclosure unit: its id and the populations (keys of GroupTally.populations) behind it. */
export interface UnitMember {
  id: string;
  populationKeys: string[];
  /** A question's distribution: the question, whose answer counts are protected one by one too. */
  question?: string;
  /**
   * A question the survey definitions require of everyone who sees its
   * strand and never route away (S1.3): where its respondents equal the
   * group's number of responses, the two are one size under two names, and
   * its unit and the number of responses' are published or hidden together
   * there (sameSizeRounds).
   */
  answeredByAll?: true;
  /** A question of one answer each (scale, choice, yes/no): its "don't know" is one more answer category (Thresholds.dontKnowCounts). */
  singleAnswer?: true;
  /**
   * A number question: its valid answers (one number each) are one count,
   * its "don't know" (S4.5's separate box) a category beside it, where the
   * campaign has both (Thresholds.dontKnowCounts).
   */
  number?: true;
}

const units = new WeakMap<IndicatorSet, UnitMember[][]>();

/**
 * The units of the disclosure decision: each indicator with the questions it
 * is computed from (joined when they share a question), each question on its
 * own otherwise (its answers and, as a second figure, its valid answers), and
 * the number of responses. The accreditation gap is a unit of its own: it is
 * a difference of two rates, not a sum of published cells.
 */
export function disclosureUnits(catalogue: QuestionCatalogue, set: IndicatorSet): UnitMember[][] {
  const known = units.get(set);
  if (known) return known;
  // Union-find over questions: an indicator joins the questions it is computed from.
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    const p = parent.get(x) ?? x;
    if (p === x) return x;
    const root = find(p);
    parent.set(x, root);
    return root;
  };
  const union = (a: string, b: string) => parent.set(find(a), find(b));
  const sources = indicatorSources(set, catalogue);
  const byRoot = new Map<string, UnitMember[]>();
  const join = (root: string, member: UnitMember) => byRoot.set(root, [...(byRoot.get(root) ?? []), member]);
  for (const def of set.indicators) {
    const [first, ...rest] = sources.get(def.code) ?? [];
    if (def.populations || !first) continue;
    for (const q of rest) union(first, q);
  }
  for (const q of shownQuestions(catalogue)) {
    const answeredByAll = q.definition.isRequired === true && q.askedIf.length === 0;
    const singleAnswer = q.kind === 'scale' || q.kind === 'choice' || q.kind === 'yesno';
    join(find(q.name), {
      id: questionFigure(q.name),
      populationKeys: [q.name],
      question: q.name,
      ...(answeredByAll ? { answeredByAll: true as const } : {}),
      ...(singleAnswer ? { singleAnswer: true as const } : {}),
      ...(q.kind === 'number' ? { number: true as const } : {}),
    });
    // Its valid answers are a figure too (the question table shows their number beside "don't know").
    join(find(q.name), { id: `${questionFigure(q.name)}:valid`, populationKeys: [validKey(q.name)] });
  }
  for (const def of set.indicators) {
    const first = sources.get(def.code)?.[0];
    join(def.populations || !first ? indicatorFigure(def) : find(first), { id: indicatorFigure(def), populationKeys: populationKeysOf(def) });
  }
  join(RESPONSES_FIGURE, { id: RESPONSES_FIGURE, populationKeys: [RESPONSES] });
  const list = [...byRoot.values()];
  units.set(set, list);
  return list;
}

/** A unit with a question everyone answers (its figure), and the unit of the number of responses it is decided with. */
export interface SameSizeCouple {
  unit: number;
  figure: number;
  responsesUnit: number;
}

/** The units whose figure is answered by every response (UnitMember.answeredByAll), each with the number of responses' unit. */
export function sameSizeCouples(units: readonly UnitMember[][]): SameSizeCouple[] {
  const responsesUnit = units.findIndex((unit) => unit.some((m) => m.id === RESPONSES_FIGURE));
  if (responsesUnit < 0) return [];
  return units.flatMap((unit, u) => unit.flatMap((m, figure) => (m.answeredByAll && u !== responsesUnit ? [{ unit: u, figure, responsesUnit }] : [])));
}

/**
 * Per cell, the published number of responses, -1 where it is hidden: what
 * bounds a question's hidden respondents from above for an outsider
 * (AnswerCounts.respondentsAtMost). `into`, when given, is filled instead
 * of a new array, and the cells where it changed are pushed onto `changed`.
 */
export function respondentsAtMostOf(responses: CountColumn, hidden: (c: number) => boolean, into?: Int32Array, changed?: number[]): Int32Array {
  const atMost = into ?? new Int32Array(responses.length);
  for (let c = 0; c < responses.length; c++) {
    const bound = hidden(c) ? -1 : responses[c]!;
    if (into && atMost[c] !== bound) changed?.push(c);
    atMost[c] = bound;
  }
  return atMost;
}

/** A unit's decision not taken yet (disclosureOf: it waits for the number of responses'). */
const NOT_DECIDED: { hidden: Set<string>; counts: CountDecision[] } = { hidden: new Set(), counts: [] };

/** The questions of the units decided after the number of responses (neither its unit nor one coupled with it): each one's unit and figure. */
export function questionFigures(units: readonly UnitMember[][]): Array<{ unit: number; figure: number }> {
  const couples = sameSizeCouples(units);
  const apart = new Set(couples.flatMap((c) => [c.unit, c.responsesUnit]));
  return units.flatMap((unit, u) => (apart.has(u) || unit.some((m) => m.id === RESPONSES_FIGURE) ? [] : unit.flatMap((m, figure) => (m.question === undefined ? [] : [{ unit: u, figure }]))));
}

/**
 * The hidden numbers of responses that published ones bound from above:
 * a member of a line whose total is bounded, or a total whose members all
 * are (to a fixed point, from the published cells). Only these can be
 * pinned by lower bounds a question's respondents give them (nobody answers
 * without a response); a hidden number no published one bounds from above
 * has no finite range to close, so the question cells there stay free.
 */
export function boundedResponses(index: LineIndex, cellCount: number, hidden: (c: number) => boolean): Uint8Array {
  const { lineTotal, lineStart, lineMembers, memberOfStart, memberOf, totalOfStart, totalOf } = index;
  const bounded = new Uint8Array(cellCount);
  // Per line, its members not bounded yet.
  const open = new Int32Array(lineTotal.length);
  for (let l = 0; l < lineTotal.length; l++) open[l] = lineStart[l + 1]! - lineStart[l]!;
  const work: number[] = [];
  const bound = (c: number) => {
    if (bounded[c]) return;
    bounded[c] = 1;
    work.push(c);
  };
  for (let c = 0; c < cellCount; c++) if (!hidden(c)) bound(c);
  while (work.length > 0) {
    const c = work.pop()!;
    for (let k = totalOfStart[c]!; k < totalOfStart[c + 1]!; k++) {
      const l = totalOf[k]!;
      for (let j = lineStart[l]!; j < lineStart[l + 1]!; j++) bound(lineMembers[j]!);
    }
    for (let k = memberOfStart[c]!; k < memberOfStart[c + 1]!; k++) {
      const l = memberOf[k]!;
      open[l]! -= 1;
      if (open[l] === 0) bound(lineTotal[l]!);
    }
  }
  return bounded;
}

/**
 * The cells where a unit's figures must be hidden because the group's
 * number of responses is: hidden there, bounded from above by published
 * ones (boundedResponses), and the unit's figures have answers enough to
 * publish (`open`, no primary suppression). A question published in such a
 * cell gives its respondents as a lower bound of the hidden number, and
 * such lower bounds, added up along a line with a published total, pin it.
 */
export function withinResponsesForced(bounded: Uint8Array, responsesHidden: (c: number) => boolean, open: (c: number) => boolean): Set<number> {
  const forced = new Set<number>();
  for (let c = 0; c < bounded.length; c++) if (bounded[c] && responsesHidden(c) && open(c)) forced.add(c);
  return forced;
}

/** What sameSizeRounds needs for the rule that a question's respondents are at most the number of responses (withinResponsesForced, tiedRespondents). */
export interface WithinResponses {
  index: LineIndex;
  cellCount: number;
  /** Unit u's cell c has answers enough to publish (no primary suppression). */
  open: (u: number, c: number) => boolean;
  /** The questions of the other units (not coupled, not the number of responses'): each one's unit and respondents per cell. */
  questions?: ReadonlyArray<{ unit: number; sizes: CountColumn }>;
  /** tiedRespondents's rule for those questions, listed already (TiedRespondentLines, kept between decisions); else listed from scratch. */
  tied?: (responsesHidden: (c: number) => boolean) => number[];
}

/** A cell of a question, for tiedRespondents. */
const NO_ANSWERS = 0;
const OPEN = 1;
const ROOM = 2;
const CANDIDATE = 3;

/** What cell c of a question is, for tiedRespondents: no answers, open, hidden with someone who did not answer (room), hidden and a candidate. */
const tiedState = (sizes: CountColumn, responses: CountColumn, open: boolean, c: number) =>
  sizes[c]! <= 0 ? NO_ANSWERS : open ? OPEN : sizes[c] !== responses[c] ? ROOM : CANDIDATE;

/**
 * Line l of a question (its cells' states in `state`) as tiedRespondents
 * lists it, pushed onto `list`: the line, its total, the cell to hide, how
 * many members have answers, those members; nothing when it cannot leave no
 * room.
 */
function listTiedLine(index: LineIndex, state: Uint8Array, responses: CountColumn, l: number, list: number[]): void {
  const { lineTotal, lineStart, lineMembers, rank } = index;
  const total = lineTotal[l]!;
  if (state[total] !== OPEN) return;
  let candidate = -1;
  let members = 0;
  for (let i = lineStart[l]!; i < lineStart[l + 1]!; i++) {
    const m = lineMembers[i]!;
    const at = state[m];
    if (at === NO_ANSWERS) continue;
    members += 1;
    if (at === OPEN) continue;
    // Someone who did not answer leaves room.
    if (at === ROOM) return;
    if (candidate < 0 || responses[m]! < responses[candidate]! || (responses[m] === responses[candidate] && rank[m]! < rank[candidate]!)) candidate = m;
  }
  if (candidate < 0) return;
  list.push(l, total, candidate, members);
  for (let i = lineStart[l]!; i < lineStart[l + 1]!; i++) if (state[lineMembers[i]!] !== NO_ANSWERS) list.push(lineMembers[i]!);
}

/** A question's listed lines (listTiedLine's: lines, cells and numbers of members, one after another). */
type TiedListing = Uint16Array | Int32Array;

/**
 * A listing kept: in 16 bits when every value fits (the lattice's lines
 * and cells number fewer than 65,536, as at 50,000 responses), else in 32.
 * Kept by every decision for every question (TiedRespondentLines): in 32
 * bits ~600 bytes a response at 5,000.
 */
export function tiedListing(list: readonly number[]): TiedListing {
  let most = 0;
  for (const value of list) if (value > most) most = value;
  return most <= 0xffff ? Uint16Array.from(list) : Int32Array.from(list);
}

/** The cells tiedRespondents forces for a number of responses' decision, from the listed lines (listTiedLine's, in the order looked at). */
function tiedCells(lists: readonly TiedListing[]): (responsesHidden: (c: number) => boolean) => number[] {
  return (responsesHidden) => {
    const cells: number[] = [];
    const chosen = new Set<number>();
    const hidden = (c: number) => chosen.has(c) || responsesHidden(c);
    for (const lines of lists) {
      for (let i = 0; i < lines.length; i += 4 + lines[i + 3]!) {
        // A hidden number of responses on the line leaves room.
        let room = hidden(lines[i + 1]!);
        for (let j = i + 4; j < i + 4 + lines[i + 3]! && !room; j++) room = hidden(lines[j]!);
        if (room) continue;
        chosen.add(lines[i + 2]!);
        cells.push(lines[i + 2]!);
      }
    }
    return cells;
  };
}

/**
 * The cells where the number of responses is to be hidden so that a
 * question's hidden respondents are not pinned by published ones (README,
 * "A question's respondents where the group's number of responses is
 * published"). Nobody answers without a response, so an outsider bounds a
 * hidden question cell's respondents from above by the group's published
 * number of responses; where everyone there answered, that bound is the
 * value. On a line whose total the question publishes, the hidden members
 * then add up to what the total and the published members leave, and each
 * is at most its number of responses: when every hidden member is such a
 * cell, the sum leaves no room and each is pinned. The question's own unit
 * cannot break that (another member it hides is bounded the same way), so
 * the number of responses of one of them is hidden (the smallest, then the
 * first in code-unit order): it then has a range, and so has every hidden
 * member. Hidden numbers of responses on the line are such a range already
 * (bounded ones hide the question's cells there, withinResponsesForced).
 *
 * Read before the questions' units are decided, from what they hide for
 * certain: their primary cells (those of no question unit's secondary
 * suppression are not looked at). Everything but the number of responses'
 * decision is the same in every round, so the lines that can leave no room
 * are listed once: with the cells `tied(responsesHidden)` forces for the
 * number of responses' decision so far.
 */
export function tiedRespondents(
  index: LineIndex,
  questions: ReadonlyArray<{ unit: number; sizes: CountColumn }>,
  responses: CountColumn,
  open: (u: number, c: number) => boolean,
): (responsesHidden: (c: number) => boolean) => number[] {
  const { lineTotal, memberOfStart, memberOf } = index;
  // Per question, its lines that can leave no room, in the order looked at (listTiedLine's).
  const lists: TiedListing[] = [];
  // A line can leave no room only with a member hidden by primary suppression where everyone answered (a candidate): only the
  // lines of such cells are looked at, in line order as if every line were.
  const lookedAt = new Int32Array(lineTotal.length);
  const state = new Uint8Array(responses.length);
  let question = 0;
  for (const { unit, sizes } of questions) {
    question += 1;
    const lines: number[] = [];
    const list: number[] = [];
    for (let c = 0; c < sizes.length; c++) {
      state[c] = tiedState(sizes, responses, open(unit, c), c);
      if (state[c] !== CANDIDATE) continue;
      for (let i = memberOfStart[c]!; i < memberOfStart[c + 1]!; i++) {
        const l = memberOf[i]!;
        if (lookedAt[l] === question) continue;
        lookedAt[l] = question;
        lines.push(l);
      }
    }
    lines.sort((x, y) => x - y);
    // Listed only when it can leave no room (most lines cannot): then with every member that has answers.
    for (const l of lines) listTiedLine(index, state, responses, l, list);
    lists.push(tiedListing(list));
  }
  return tiedCells(lists);
}

/**
 * tiedRespondents's lines kept between decisions (evidence-decision.ts): a
 * response changes the respondents, numbers of responses and primary cells
 * of a few cells, and a line's listing reads only its own cells' states
 * (tiedState) and the numbers of responses of its candidates; so only the
 * lines through a cell whose state changed, or through a candidate (whose
 * number of responses may have), are listed again. Each question's cell
 * states are kept (a byte a cell), and its listed lines in line order.
 */
export class TiedRespondentLines {
  private questions: Array<{ unit: number; sizes: CountColumn; state: Uint8Array; listed: TiedListing }> = [];
  private responses: CountColumn | undefined;

  constructor(private readonly index: LineIndex) {}

  /**
   * The rule (tiedRespondents's) for these questions, numbers of responses
   * and open cells, which changed since the last call only in `changed`
   * cells; a question met for the first time (or with other sizes, or
   * other numbers of responses) is listed from scratch.
   */
  update(
    questions: ReadonlyArray<{ unit: number; sizes: CountColumn }>,
    responses: CountColumn,
    open: (u: number, c: number) => boolean,
    changed: readonly number[],
  ): (responsesHidden: (c: number) => boolean) => number[] {
    const { lineTotal, memberOfStart, memberOf, totalOfStart, totalOf } = this.index;
    const sameResponses = this.responses === responses;
    this.responses = responses;
    const lines = new Set<number>();
    this.questions = questions.map(({ unit, sizes }, q) => {
      const known = this.questions[q];
      if (!sameResponses || !known || known.unit !== unit || known.sizes !== sizes) {
        const state = new Uint8Array(sizes.length);
        for (let c = 0; c < sizes.length; c++) state[c] = tiedState(sizes, responses, open(unit, c), c);
        const list: number[] = [];
        for (let l = 0; l < lineTotal.length; l++) listTiedLine(this.index, state, responses, l, list);
        return { unit, sizes, state, listed: tiedListing(list) };
      }
      const { state, listed } = known;
      lines.clear();
      for (const c of changed) {
        const was = state[c];
        state[c] = tiedState(sizes, responses, open(unit, c), c);
        if (state[c] === was && was !== CANDIDATE) continue;
        for (let i = memberOfStart[c]!; i < memberOfStart[c + 1]!; i++) lines.add(memberOf[i]!);
        if (state[c] !== was) for (let i = totalOfStart[c]!; i < totalOfStart[c + 1]!; i++) lines.add(totalOf[i]!);
      }
      if (lines.size === 0) return known;
      // The lines listed again merged, in line order, with the others as they were.
      const again = [...lines].sort((x, y) => x - y);
      const list: number[] = [];
      let i = 0;
      for (const l of again) {
        for (; i < listed.length && listed[i]! < l; i += 4 + listed[i + 3]!) for (let j = i; j < i + 4 + listed[i + 3]!; j++) list.push(listed[j]!);
        if (i < listed.length && listed[i] === l) i += 4 + listed[i + 3]!;
        listTiedLine(this.index, state, responses, l, list);
      }
      for (let j = i; j < listed.length; j++) list.push(listed[j]!);
      known.listed = tiedListing(list);
      return known;
    });
    return tiedCells(this.questions.map(({ listed }) => listed));
  }
}

/**
 * The joint decision of units that show one size under two names in some
 * cells (a question everyone answers and the number of responses, where
 * the two are equal): a cell hidden in one and published in the other gave
 * the hidden one away, so it is forced hidden in the other and that unit is
 * decided again with every cell forced so far (its repairs and
 * complementary cells follow), round after round until the two agree on
 * every such cell. The question's unit is also forced hidden wherever the
 * number of responses is hidden and bounded from above
 * (withinResponsesForced), as every other unit is after the rounds, once
 * the number of responses' decision is final; and the number of responses
 * is forced hidden where published ones would pin the hidden respondents
 * of another unit's question (tiedRespondents). Each round looks at the
 * decisions of the last one only, so both engines, taking the same rounds,
 * force the same cells. Forced cells only grow, so the rounds end. Cells
 * where the sizes differ (some responses did not answer: another definition
 * version, an import) are otherwise left to each unit's own decision.
 * `hiddenAt(u, c)`: unit u's cell c as decided now; `decideAgain(u,
 * forced)`: decide unit u with those cells hidden beside its primary ones.
 */
export function sameSizeRounds(
  couples: ReadonlyArray<{ unit: number; responsesUnit: number; sizes: CountColumn; responses: CountColumn }>,
  within: WithinResponses,
  hiddenAt: (u: number, c: number) => boolean,
  decideAgain: (u: number, forced: ReadonlySet<number>) => void,
): void {
  for (const _ of sameSizeRoundSteps(couples, within, hiddenAt, (u, forced) => (decideAgain(u, forced), []))) void _;
}

/** sameSizeRounds, its units decided again a step at a time (evidence-decision.ts decisionSteps). */
export function* sameSizeRoundSteps(
  couples: ReadonlyArray<{ unit: number; responsesUnit: number; sizes: CountColumn; responses: CountColumn }>,
  within: WithinResponses,
  hiddenAt: (u: number, c: number) => boolean,
  decideAgain: (u: number, forced: ReadonlySet<number>) => Iterable<void>,
): Generator<void, void, void> {
  const forced = new Map<number, Set<number>>();
  const first = couples[0];
  const tied = first && within.questions ? (within.tied ?? tiedRespondents(within.index, within.questions, first.responses, within.open)) : undefined;
  for (;;) {
    const grown = new Set<number>();
    const force = (u: number, c: number) => {
      let cells = forced.get(u);
      if (!cells) forced.set(u, (cells = new Set()));
      if (cells.has(c)) return;
      cells.add(c);
      grown.add(u);
    };
    for (const { unit, responsesUnit, sizes, responses } of couples) {
      for (let c = 0; c < sizes.length; c++) {
        if (sizes[c]! <= 0 || sizes[c] !== responses[c]) continue;
        const a = hiddenAt(unit, c);
        if (a === hiddenAt(responsesUnit, c)) continue;
        force(a ? responsesUnit : unit, c);
      }
      const hiddenResponses = (c: number) => hiddenAt(responsesUnit, c);
      const bounded = boundedResponses(within.index, within.cellCount, hiddenResponses);
      for (const c of withinResponsesForced(bounded, hiddenResponses, (c) => within.open(unit, c))) if (!hiddenAt(unit, c)) force(unit, c);
    }
    // The number of responses is one unit, whichever couple names it.
    if (first && tied) for (const c of tied((c) => hiddenAt(first.responsesUnit, c))) force(first.responsesUnit, c);
    if (grown.size === 0) return;
    for (const u of [...grown].sort((a, b) => a - b)) yield* decideAgain(u, forced.get(u)!);
  }
}

/** The population keys an indicator's cell is protected by: its own, or those its populations() asks for. */
function populationKeysOf(def: IndicatorDef): string[] {
  if (!def.populations) return [def.population];
  const asked: string[] = [];
  const probe = { ...emptyTally(), populations: { get: (key: string) => void asked.push(key) } } as unknown as GroupTally;
  def.populations(probe);
  return asked;
}

const decisions = new WeakMap<Tallies, Map<string, Disclosure>>();

/**
 * Decides, once per campaign's counts and thresholds, which cells of which
 * figures are published (see disclosure.ts), from counts made from scratch
 * (the reference the in-memory engine is tested against: evidence-decision.ts
 * takes the same decision from the kept counts).
 */
export function disclosureOf(catalogue: QuestionCatalogue, set: IndicatorSet, tallies: Tallies, thresholds: Thresholds, options: { answerCounts?: boolean } = {}): Disclosure {
  const minRange = minRangeOf(thresholds);
  const dontKnowCounts = dontKnowCountsOf(thresholds);
  const solveUnknowns = solveUnknownsOf(thresholds);
  const thresholdKey = `${thresholds.minInstitutions}/${thresholds.minRespondents}/${minRange}/${dontKnowCounts}/${solveUnknowns}/${options.answerCounts !== false}`;
  let perThresholds = decisions.get(tallies);
  if (!perThresholds) decisions.set(tallies, (perThresholds = new Map()));
  const known = perThresholds.get(thresholdKey);
  if (known) return known;

  const source = new TableSource(tallies, thresholds.minInstitutions);
  const { cells, lines } = latticeOf(source);
  const ids = [...cells.keys()];
  const none: Population = { respondents: 0, institutions: new Set() };

  const hidden = new Map<string, HiddenCells>();
  const counts: HiddenCounts = new Map();
  const lineIndex = indexLines(ids, lines);
  const indexOf = new Map(ids.map((id, i) => [id, i]));
  const overall = cells.get(cellId([], ''));
  const unitList = disclosureUnits(catalogue, set);
  // A question everyone answers and the number of responses are decided first, in rounds (sameSizeRounds); every other
  // unit once the number of responses' decision is final, which bounds its questions' respondents.
  const responsesUnit = unitList.findIndex((unit) => unit.some((m) => m.id === RESPONSES_FIGURE));
  const coupled = new Set(sameSizeCouples(unitList).flatMap((c) => [c.unit, c.responsesUnit]));
  if (responsesUnit >= 0) coupled.add(responsesUnit);
  const decided = unitList.map((unit, u) => {
    const members = unit.map((m) => ({ id: m.id, populations: (t: GroupTally) => m.populationKeys.map((key) => t.populations.get(key) ?? none) }));
    const figures: Figure[] = members.map((m) => ({
      size: (id) => {
        const tally = cells.get(id);
        return tally ? m.populations(tally).reduce((total, p) => total + p.respondents, 0) : 0;
      },
      // Populations without answers (one side of the gap) do not make a figure too small: its value is then empty.
      tooSmall: (id) => isTooSmall(m.populations(cells.get(id)!).filter((p) => p.respondents > 0), thresholds),
    }));
    // Each question's answer categories the campaign has ("don't know" apart), in code-unit order, and their counts per cell;
    // a single answer's "don't know" last, as a category of its own sum, where the campaign has one (AnswerCounts.openSum).
    // A number question's valid answers are one category (a number each), with its "don't know" beside it where the campaign has both.
    const questions: Array<AnswerCounts & { name: string; keys: string[] }> = unit.flatMap((m, i) => {
      const given = m.question === undefined ? undefined : overall?.questions.get(m.question);
      if (!given || options.answerCounts === false) return [];
      const dontKnow = Int32Array.from(ids, (id) => [...(cells.get(id)!.questions.get(m.question!)?.items.values() ?? [])].reduce((t, item) => t + (item.value === DONT_KNOW ? item.n : 0), 0));
      const campaignDontKnow = dontKnow[indexOf.get(cellId([], ''))!]! > 0;
      const numbers = m.number === true && dontKnowCounts && given.numericN > 0 && campaignDontKnow;
      const categories = numbers ? [] : [...given.items].filter(([, item]) => item.value !== DONT_KNOW && item.n > 0).sort(([a], [b]) => byCodeUnits(a, b));
      if (categories.length === 0 && !numbers) return [];
      const rows = new Map<string, number>();
      const keys = numbers ? [NUMBERS_KEY] : categories.map(([key]) => key);
      const sumOf = numbers ? [0] : categories.map(([, item]) => rows.get(item.row ?? '') ?? (rows.set(item.row ?? '', rows.size), rows.size - 1));
      const counts = numbers
        ? [Int32Array.from(ids, (id) => cells.get(id)!.questions.get(m.question!)?.numericN ?? 0)]
        : categories.map(([key]) => Int32Array.from(ids, (id) => cells.get(id)!.questions.get(m.question!)?.items.get(key)?.n ?? 0));
      // A number's mean and sum are of the valid answers only, and its indicators pooled ratios: nothing splits its count.
      const sides = numbers ? [] : answerSides(catalogue, set, m.question!, keys);
      const withDontKnow = numbers || (dontKnowCounts && m.singleAnswer === true && rows.size === 1 && campaignDontKnow);
      return [
        {
          name: m.question!,
          keys: withDontKnow ? [...keys, DONT_KNOW_KEY] : keys,
          sides: withDontKnow ? sides.map((side) => Int32Array.from([...side, 0])) : sides,
          sumOf: withDontKnow ? [...sumOf, 1] : sumOf,
          counts: withDontKnow ? [...counts, dontKnow] : counts,
          ...(withDontKnow ? { openSum: 1 } : {}),
          respondents: Int32Array.from(ids, (id) => figures[i]!.size(id)),
          dontKnow,
          minRange,
          solveUnknowns,
        },
      ];
    });
    // The number of responses: views list every group that has one, so the audit starts its hidden counts at 1.
    if (unit.length === 1 && unit[0]!.id === RESPONSES_FIGURE && options.answerCounts !== false) {
      const responses = Int32Array.from(ids, (id) => figures[0]!.size(id));
      questions.push({ name: RESPONSES_FIGURE, keys: [RESPONSES_FIGURE], sides: [], sumOf: [0], counts: [responses], respondents: responses, dontKnow: new Int32Array(ids.length), listed: true, minRange });
    }
    // Decided below when it waits for the number of responses' decision.
    const waits = responsesUnit >= 0 && !coupled.has(u);
    return { figures, questions, decision: waits ? NOT_DECIDED : unitDecision(ids, lines, lineIndex, figures, questions) };
  });
  // Where a question everyone answers has as many respondents as the group has responses, one decision for both.
  const sizes = (u: number, f: number) => Int32Array.from(ids, (id) => decided[u]!.figures[f]!.size(id));
  const couples = sameSizeCouples(unitList).map(({ unit, figure, responsesUnit }) => ({ unit, responsesUnit, sizes: sizes(unit, figure), responses: sizes(responsesUnit, 0) }));
  // A unit's cell that primary suppression leaves open: its figures have answers there, none too few (per unit, read once: the rounds ask often).
  const opened = new Map<number, Uint8Array>();
  const open = (u: number, c: number) => {
    let cells = opened.get(u);
    if (!cells) {
      cells = Uint8Array.from(ids, (id) => {
        const withData = decided[u]!.figures.filter((f) => f.size(id) > 0);
        return withData.length > 0 && !withData.some((f) => f.tooSmall(id)) ? 1 : 0;
      });
      opened.set(u, cells);
    }
    return cells[c] === 1;
  };
  const decideAgain = (u: number, forced: ReadonlySet<number>) => {
    const { figures, questions } = decided[u]!;
    decided[u]!.decision = unitDecision(ids, lines, lineIndex, figures, questions, new Set([...forced].map((c) => ids[c]!)));
  };
  const hiddenAt = (u: number, c: number) => decided[u]!.decision.hidden.has(ids[c]!);
  const questions = questionFigures(unitList).map(({ unit, figure }) => ({ unit, sizes: sizes(unit, figure) }));
  sameSizeRounds(couples, { index: lineIndex, cellCount: ids.length, open, questions }, hiddenAt, decideAgain);
  // Every other unit, now that the number of responses is decided: its cells hidden where that is hidden and bounded from
  // above, and its questions' hidden respondents audited with the published numbers of responses as their upper bounds.
  if (responsesUnit >= 0) {
    const hiddenResponses = (c: number) => hiddenAt(responsesUnit, c);
    const bounded = boundedResponses(lineIndex, ids.length, hiddenResponses);
    const atMost = respondentsAtMostOf(sizes(responsesUnit, 0), hiddenResponses);
    unitList.forEach((_, u) => {
      if (coupled.has(u)) return;
      for (const q of decided[u]!.questions) q.respondentsAtMost = atMost;
      decideAgain(u, withinResponsesForced(bounded, hiddenResponses, (c) => open(u, c)));
    });
  }
  const cellNumber = (id: string) => indexOf.get(id) ?? -1;
  unitList.forEach((unit, u) => {
    const { questions, decision } = decided[u]!;
    const view: HiddenCells = { has: (id) => decision.hidden.has(id), at: (c) => c >= 0 && decision.hidden.has(ids[c]!) };
    for (const m of unit) hidden.set(m.id, view);
    questions.forEach((q, i) => q.name !== RESPONSES_FIGURE && counts.set(q.name, hiddenCountsView(q.keys, decision.counts[i]!, cellNumber)));
  });
  const disclosure = { source, cellNumber, hidden, counts };
  perThresholds.set(thresholdKey, disclosure);
  return disclosure;
}

/**
 * A distribution with some answer counts hidden: their counts and shares,
 * the mean (a sum over the counts, weighing each answer differently) and the
 * top-two share where the hidden counts lie on both sides of it; either would
 * give a hidden count back from the others.
 */
function withholdCounts(d: Distribution, keys: ReadonlySet<string>, topShareSplits: boolean): Distribution {
  const counts = d.counts.map((c) => (keys.has(countKey(c)) ? { ...c, n: null, share: null } : c));
  // "Don't know" hidden: so are the respondents (valid answers + "don't know"), nothing computed from the valid answers.
  const people = keys.has(DONT_KNOW_KEY) ? { respondents: null, dk: null } : {};
  if (keys.size === (keys.has(DONT_KNOW_KEY) ? 1 : 0)) return { ...d, ...people, counts };
  return { ...d, ...people, counts, topShare: topShareSplits ? null : d.topShare, mean: null, withheld: true };
}

/** A count's key back as its category: row, rank and value (typed as the key says). */
function categoryOf(key: string): { value: string | number | boolean; row?: string; rank?: number } {
  const [row, rank, type, ...rest] = key.split('|');
  const text = rest.join('|');
  const value = type === 'number' ? Number(text) : type === 'boolean' ? text === 'true' : text;
  return { value, ...(row ? { row } : {}), ...(rank ? { rank: Number(rank) } : {}) };
}

const weights = new WeakMap<object, Map<string, number | null>>();

/**
 * What a figure computed from a question's answers (an indicator, the
 * top-two share) makes of one answer of one category alone: a share's 100
 * or 0, a mean's value. The figure is a weighted sum of the counts divided
 * by its n (published), so hidden counts of one weight only show their sum,
 * which the cell's valid answers minus its shown counts give anyway.
 */
function weightOf(figure: object, compute: (tally: GroupTally) => number | null, question: string, key: string): number | null {
  let known = weights.get(figure);
  if (!known) weights.set(figure, (known = new Map()));
  const memo = `${question}#${key}`;
  if (known.has(memo)) return known.get(memo)!;
  const category = categoryOf(key);
  const numeric = typeof category.value === 'number';
  const one: Population = { respondents: 1, institutions: new Set(['probe']) };
  const tally = { ...emptyTally(), populations: { get: () => one } as unknown as Map<string, Population> };
  tally.questions.set(question, { items: new Map([[key, { ...category, n: 1 }]]), numericN: numeric ? 1 : 0, sum: numeric ? (category.value as number) : 0, dk: 0 });
  const weight = compute(tally);
  known.set(memo, weight);
  return weight;
}

/** The figures computed from a question's answer counts that split its categories: its indicators and its top-two share. */
function splittingFigures(catalogue: QuestionCatalogue, set: IndicatorSet, question: string): Array<{ figure: object; compute: (tally: GroupTally) => number | null }> {
  const meta = catalogue.byName.get(question);
  const sources = indicatorSources(set, catalogue);
  return [
    ...set.indicators.filter((def) => (sources.get(def.code) ?? []).includes(question)).map((def) => ({ figure: def, compute: (t: GroupTally) => def.compute(t).value })),
    ...(meta ? [{ figure: meta, compute: (t: GroupTally) => distributionOf(meta, t).topShare }] : []),
  ];
}

/** Whether hidden counts of these categories lie on both sides of a figure's split (their weights differ); "don't know" is in none (valid answers only). */
function splits(figure: object, compute: (tally: GroupTally) => number | null, question: string, keys: Iterable<string>): boolean {
  let first: number | null | undefined;
  for (const key of keys) {
    if (key === DONT_KNOW_KEY || key === NUMBERS_KEY) continue;
    const weight = weightOf(figure, compute, question, key);
    if (first === undefined) first = weight;
    else if (weight !== first) return true;
  }
  return false;
}

/** Per figure that splits a question's categories, each category's side (count-suppression.ts AnswerCounts.sides). */
export function answerSides(catalogue: QuestionCatalogue, set: IndicatorSet, question: string, keys: readonly string[]): Int32Array[] {
  return splittingFigures(catalogue, set, question)
    .map(({ figure, compute }) => {
      const classes = new Map<number | null, number>();
      return Int32Array.from(keys, (key) => {
        const weight = weightOf(figure, compute, question, key);
        return classes.get(weight) ?? (classes.set(weight, classes.size), classes.size - 1);
      });
    })
    .filter((side) => side.some((s) => s !== side[0]));
}

/** A count's key, as the counts keep it (evidence-tally.ts). */
export const countKey = (c: Pick<Distribution['counts'][number], 'row' | 'rank' | 'value'>) => `${c.row ?? ''}|${c.rank ?? ''}|${typeof c.value}|${String(c.value)}`;

/** A single answer's or a number's "don't know" as a category of its counts (AnswerCounts.openSum): hidden, it withholds the cell's "don't know" and respondents. */
export const DONT_KNOW_KEY = countKey({ value: DONT_KNOW });

/**
 * A number question's valid answers as the one category beside its "don't
 * know" (a count no distribution lists: it is the cell's valid answers, and
 * as the only count of its sum it is never hidden alone, only with its cell).
 */
export const NUMBERS_KEY = countKey({ value: 'valid numbers' });

const derivedOf = new WeakMap<GroupTally, Map<object, unknown>>();

/**
 * What a figure computes from a group's counts, kept with those counts: the
 * kept engine hands out the same tally until its cell changes, so a page
 * after a response computes again only the groups that response is in.
 */
function derived<T>(tally: GroupTally, figure: object, make: () => T): T {
  let known = derivedOf.get(tally);
  if (!known) derivedOf.set(tally, (known = new Map()));
  if (!known.has(figure)) known.set(figure, make());
  return known.get(figure) as T;
}

/** The answer counts withheld in a cell, for each question a figure is computed from. */
type WithheldCounts = Array<{ question: string; hidden: ReadonlySet<string> | undefined }>;

/** The questions a figure is computed from, each with its hidden counts (none where the decision keeps none), looked up once per table. */
type WithheldViews = Array<{ question: string; view: HiddenCountsOfQuestion | undefined }>;

const withheldViews = (counts: HiddenCounts, questions: readonly string[]): WithheldViews => questions.map((question) => ({ question, view: counts.get(question) }));

/** A published cell as made last for a group's counts: the answer counts withheld there then, question by question, and the thresholds. */
interface KeptCell {
  thresholds: Thresholds;
  withheld: Array<ReadonlySet<string> | undefined>;
  cell: unknown;
}

/** A group's kept cells, by figure (KeptCell). */
type KeptCells = Map<object, KeptCell>;

const keptCells = new WeakMap<GroupTally, KeptCells>();

/** A group's kept cells, looked up once per group and table (not once per cell: a table by two dimensions has thousands). */
function keptCellsOf(tally: GroupTally): KeptCells {
  let known = keptCells.get(tally);
  if (!known) keptCells.set(tally, (known = new Map()));
  return known;
}

/**
 * A figure's published cell, kept with the group's counts (as derived) and
 * made again only when the answer counts withheld there (of the questions
 * it is computed from) differ from the last time: a decision after a
 * response changes a few groups' counts and a few cells' hidden counts, and
 * a page shows thousands of cells. Cells are shared between tables, never
 * changed once made.
 */
function keptCell<T extends object>(
  known: KeptCells,
  tally: GroupTally,
  figure: object,
  thresholds: Thresholds,
  questions: WithheldViews,
  cell: number,
  make: (tally: GroupTally, withheld: WithheldCounts) => Cell<T>,
): Cell<T> {
  const last = known.get(figure);
  if (last && last.thresholds === thresholds) {
    let same = true;
    for (let i = 0; i < questions.length && same; i++) same = sameKeys(last.withheld[i], questions[i]!.view?.at(cell));
    if (same) return last.cell as Cell<T>;
  }
  const withheld = questions.map(({ question, view }) => ({ question, hidden: view?.at(cell) }));
  const made = make(tally, withheld);
  known.set(figure, { thresholds, withheld: withheld.map((w) => w.hidden), cell: made });
  return made;
}

/** Whether two cells withhold the same answer counts (a decision makes its own sets). */
function sameKeys(a: ReadonlySet<string> | undefined, b: ReadonlySet<string> | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.size !== b.size) return false;
  for (const key of a) if (!b.has(key)) return false;
  return true;
}

function indicatorCell(def: IndicatorDef, tally: GroupTally, thresholds: Thresholds): Cell<IndicatorFigures> {
  const populations = def.populations ? def.populations(tally) : [tally.populations.get(def.population) ?? { respondents: 0, institutions: new Set<string>() }];
  if (isTooSmall(populations, thresholds)) return { suppressed: true };
  const { value, n } = derived(tally, def, () => def.compute(tally));
  const respondents = Math.min(...populations.map((p) => p.respondents));
  return {
    suppressed: false,
    respondents,
    value,
    n,
    ...(def.banded && value !== null ? { band: bandOf(value) } : {}),
    ...(def.target !== undefined && value !== null ? { targetGap: value - def.target } : {}),
  };
}

function groupLabel(catalogue: QuestionCatalogue, dimensions: Dimension[], key: string): string {
  return groupValues(key)
    .map((value, index) => (value === NOT_STATED ? 'not stated' : choiceLabel(catalogue.byName.get(DIMENSIONS[dimensions[index]!].question), value)))
    .join(' · ');
}

/**
 * A group's place in the views' order, per dimension of its key: its value's
 * place among the question's choices, then values that are no choice, then
 * "not stated". The choices' places are listed once per table, not at every
 * comparison of the sort.
 */
function groupRanks(catalogue: QuestionCatalogue, dimensions: Dimension[]): (key: string) => number[] {
  const places = dimensions.map((d) => {
    const place = new Map<string, number>();
    catalogue.byName.get(DIMENSIONS[d].question)?.choices.forEach((c, i) => place.has(String(c.value)) || place.set(String(c.value), i));
    return place;
  });
  return (key) => {
    const values = groupValues(key);
    return places.map((place, i) => (values[i] === NOT_STATED ? 1e6 : (place.get(values[i]!) ?? 1e5)));
  };
}

function compareRanks(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
