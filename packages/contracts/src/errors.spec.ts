import { KeywayError } from './errors';

class ThingError extends KeywayError {}

describe('KeywayError', () => {
  it("a module's subclass keeps its own name in logs, and crosses NATS as the same body", () => {
    const err = new ThingError('not_found', 'No thing thg_1', { hint: 'x' });
    expect(err).toBeInstanceOf(KeywayError);
    expect(err.name).toBe('ThingError');
    expect(String(err)).toBe('ThingError: No thing thg_1');
    expect(err.toBody()).toEqual({ error: 'No thing thg_1', code: 'not_found', hint: 'x' });
    expect(new KeywayError('internal', 'x').name).toBe('KeywayError');
  });
});
