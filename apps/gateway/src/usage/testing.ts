import { parseKeyEvent, STREAMS, type KeyEvent } from '@keyway/contracts';
import { ensureStream, type JetStreamContext } from '@keyway/messaging';

export type UsedEvent = Extract<KeyEvent, { type: 'used' }>;

/** Test helper: the usage stream as identity, its owner, configures it. */
export async function ensureUsageStream(jet: JetStreamContext): Promise<void> {
  await ensureStream(jet.jsm, { name: STREAMS.usage.name, subjects: [...STREAMS.usage.subjects], duplicateWindowMs: 10 * 60_000 });
}

/** Test helper: every `used` event in the usage stream, read through the contract. */
export async function publishedUsage(jet: JetStreamContext): Promise<UsedEvent[]> {
  const out: UsedEvent[] = [];
  const last = (await jet.jsm.streams.info(STREAMS.usage.name)).state.last_seq;
  for (let seq = 1; seq <= last; seq++) {
    const e = parseKeyEvent((await jet.jsm.streams.getMessage(STREAMS.usage.name, { seq }))?.json());
    if (e.type === 'used') out.push(e);
  }
  return out;
}
