import type { JetStreamManager } from '@nats-io/jetstream';
import { isAlreadyThere, isNotFound, nanos } from './jetstream-errors';

export interface StreamSpec {
  name: string;
  subjects: string[];
  /** How long a message id is remembered for de-duplication. */
  duplicateWindowMs?: number;
}

/** Creates the stream, or brings an existing one's subjects and window to this spec. */
export async function ensureStream(jsm: JetStreamManager, spec: StreamSpec): Promise<void> {
  const config = {
    name: spec.name,
    subjects: spec.subjects,
    duplicate_window: nanos(spec.duplicateWindowMs ?? 2 * 60_000),
  };
  try {
    const info = await jsm.streams.info(spec.name);
    const same =
      info.config.subjects?.join() === spec.subjects.join() &&
      info.config.duplicate_window === config.duplicate_window;
    if (!same) await jsm.streams.update(spec.name, config);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    try {
      await jsm.streams.add(config);
    } catch (addErr) {
      if (!isAlreadyThere(addErr)) throw addErr;
    }
  }
}
