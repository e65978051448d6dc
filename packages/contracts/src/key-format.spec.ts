import { createHash } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { crc32, hashKey, hashMatches, keyPrefix, lookupIdOfPrefix, mintKey, parseKey } from './key-format';

describe('key format', () => {
  it('computes the standard CRC-32 (check value of "123456789"), for non-ASCII text too', () => {
    expect(crc32('123456789')).toBe(0xcbf43926);
    expect(crc32('')).toBe(0);
    // Over the UTF-8 bytes, like zlib's: the ASCII fast path must not change what others compute.
    for (const text of ['é', 'kw_live_é', 'snowman ☃ and 𝄞']) expect(crc32(text)).toBe(zlibCrc32(Buffer.from(text, 'utf8')));
  });

  it('parses what it mints and refuses a changed character or checksum', () => {
    const { key, prefix, lookupId } = mintKey('test');
    expect(parseKey(key)).toEqual({ environment: 'test', lookupId, prefix });
    const secretAt = prefix.length + 5;
    const flipped = key.slice(0, secretAt) + (key[secretAt] === 'a' ? 'b' : 'a') + key.slice(secretAt + 1);
    expect(parseKey(flipped)).toBeNull();
    expect(parseKey(key.slice(0, -1) + (key.endsWith('0') ? '1' : '0'))).toBeNull();
  });

  it('matches a key against its SHA-256 hex digest and nothing else', () => {
    const { key } = mintKey('live');
    const digest = createHash('sha256').update(key).digest('hex');
    expect(hashKey(key)).toBe(digest);
    expect(hashMatches(key, digest)).toBe(true);
    expect(hashMatches(mintKey('live').key, digest)).toBe(false);
    expect(hashMatches(key, digest.slice(0, -1))).toBe(false);
    expect(hashMatches(key, `${digest}0`)).toBe(false);
    expect(hashMatches(key, '')).toBe(false);
  });

  it('reads the look-up id of a prefix, and nothing from what is not one', () => {
    const { prefix, lookupId } = mintKey('live');
    expect(lookupIdOfPrefix(prefix)).toBe(lookupId);
    expect(lookupIdOfPrefix(keyPrefix('test', 'abc12345'))).toBe('abc12345');
    for (const junk of [undefined, null, 7, {}, '', 'kw_live_', 'abc12345', 'kw_prod_abc12345', 'kw_live_ABC12345', 'kw_live_abc1234', 'kw_live_abc123456', 'xkw_live_abc12345', 'kw_live_abc12345\n', 'kw_live_x_abc12345']) {
      expect({ junk, id: lookupIdOfPrefix(junk) }).toEqual({ junk, id: undefined });
    }
  });
});
