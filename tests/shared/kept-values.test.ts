import { describe, expect, it, vi } from 'vitest';
import { KeptValues } from '../../server/shared/change-stamp.ts';

/** A computation that answers what `next` holds when it is called, and counts its calls. */
function computation(first: string) {
  const state = { next: first as string | Error, calls: 0 };
  const compute = async () => {
    state.calls += 1;
    if (state.next instanceof Error) throw state.next;
    return state.next;
  };
  return { state, compute };
}

describe('a kept value', () => {
  it('is computed once per basis, and a new basis waits for its own computation', async () => {
    const kept = new KeptValues<string>();
    const models = {};
    const { state, compute } = computation('first');
    expect(await kept.get(models, 'c', 'b1', compute)).toBe('first');
    expect(await kept.get(models, 'c', 'b1', compute)).toBe('first');
    expect(state.calls).toBe(1);
    state.next = 'second';
    expect(await kept.get(models, 'c', 'b2', compute)).toBe('second');
    expect(state.calls).toBe(2);
  });

  it('past its age is still answered, and computed again beside the load: the next load has the new value', async () => {
    const kept = new KeptValues<string>();
    const models = {};
    const { state, compute } = computation('old');
    expect(await kept.get(models, 'c', 'b', compute)).toBe('old');
    state.next = 'new';
    // The computation beside the loads waits until the test lets it go on.
    let goOn = () => {};
    const held = new Promise<void>((resolve) => (goOn = resolve));
    const slow = async () => {
      await held;
      return compute();
    };
    // Every value is past an age of 0: answered as kept without waiting for the computation, which runs once however many loads ask meanwhile.
    const answers: string[] = [];
    for (let i = 0; i < 2; i++) void kept.get(models, 'c', 'b', slow, 0).then((value) => answers.push(value));
    await new Promise((resolve) => setImmediate(resolve));
    expect(answers).toEqual(['old', 'old']);
    goOn();
    await vi.waitFor(async () => expect(await kept.get(models, 'c', 'b', compute)).toBe('new'));
    expect(state.calls).toBe(2);
  });

  it('computed again beside a load and failing, stays as it was, and the next load past its age tries again', async () => {
    const kept = new KeptValues<string>();
    const models = {};
    const { state, compute } = computation('kept');
    await kept.get(models, 'c', 'b', compute);
    state.next = new Error('the database went away');
    expect(await kept.get(models, 'c', 'b', compute, 0)).toBe('kept');
    await vi.waitFor(() => expect(state.calls).toBe(2));
    state.next = 'recovered';
    await vi.waitFor(async () => expect(await kept.get(models, 'c', 'b', compute, 0)).toBe('recovered'));
  });
});
