import { minimalLogger } from './logger';

describe('minimalLogger', () => {
  it("hands each level's fields and message to the Nest logger's method of that level, as one object", () => {
    const seen: Array<[string, unknown]> = [];
    const nest = {
      log: (m: unknown) => seen.push(['log', m]),
      warn: (m: unknown) => seen.push(['warn', m]),
      error: (m: unknown) => seen.push(['error', m]),
    };
    const logger = minimalLogger(nest);
    logger.info({ relay: 'jetstream' }, 'took the lead');
    logger.warn({ err: 'boom', attempt: 2 }, 'retrying');
    logger.error({}, undefined);
    expect(seen).toEqual([
      ['log', { relay: 'jetstream', msg: 'took the lead' }],
      ['warn', { err: 'boom', attempt: 2, msg: 'retrying' }],
      ['error', { msg: undefined }],
    ]);
  });
});
