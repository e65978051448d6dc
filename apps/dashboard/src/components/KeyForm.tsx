import { useId, useState, type FormEvent } from 'react';
import { Button } from 'react-aria-components';
import type { Environment, RateLimit, Scope } from '../api';
import { ErrorNote } from './ui';

const RESOURCES = [
  ['contacts', 'Contacts and accounts'],
  ['journeys', 'Journeys'],
  ['users', 'Members'],
  ['keys', 'API keys'],
  ['audit', 'Audit trail'],
] as const;
type Resource = (typeof RESOURCES)[number][0];
type Access = 'none' | 'read' | 'write';

/** The defaults a key gets when a limit is left empty (DESIGN, Rate limits). */
const LIMITS: readonly [keyof RateLimit, string, number][] = [
  ['burst_per_second', 'Per second (burst)', 60],
  ['per_minute', 'Per minute', 100],
  ['per_hour', 'Per hour', 5_000],
  ['daily', 'Per day (UTC)', 100_000],
];
const DEFAULT_LIMITS = Object.fromEntries(LIMITS.map(([k, , d]) => [k, d])) as RateLimit;

const accessOf = (scopes: readonly Scope[], r: Resource): Access => (scopes.includes(`${r}:write`) ? 'write' : scopes.includes(`${r}:read`) ? 'read' : 'none');

export interface KeyFormValues {
  name: string;
  scopes: Scope[];
  /** Only the limits that differ from what the key has (create: from the defaults). */
  rate_limit?: Partial<RateLimit>;
  environment?: Environment;
  expires_at?: string | null;
}

type Expiry = 'none' | '30' | '60' | '90' | 'date';

/**
 * Name, scopes (read or write per resource), rate limits; for a new key also environment and
 * expiry. Used by "Create key" and by "Edit". Native inputs, each labelled, in fieldsets.
 */
export function KeyForm({
  initial,
  isNew,
  submitLabel,
  pending,
  error,
  onSubmit,
  onCancel,
  defaultEnvironment = 'live',
}: {
  initial?: { name: string; scopes: readonly Scope[]; rate_limit: RateLimit };
  isNew: boolean;
  submitLabel: string;
  pending: boolean;
  error: unknown;
  onSubmit: (values: KeyFormValues) => void;
  onCancel: () => void;
  defaultEnvironment?: Environment;
}) {
  const id = useId();
  const base = initial?.rate_limit ?? DEFAULT_LIMITS;
  const [name, setName] = useState(initial?.name ?? '');
  const [access, setAccess] = useState<Record<Resource, Access>>(() => Object.fromEntries(RESOURCES.map(([r]) => [r, accessOf(initial?.scopes ?? [], r)])) as Record<Resource, Access>);
  const [limits, setLimits] = useState<Record<keyof RateLimit, string>>(() => Object.fromEntries(LIMITS.map(([k]) => [k, initial ? String(base[k]) : ''])) as Record<keyof RateLimit, string>);
  const [environment, setEnvironment] = useState<Environment>(defaultEnvironment);
  const [expiry, setExpiry] = useState<Expiry>('none');
  const [expiryDate, setExpiryDate] = useState('');

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const scopes = RESOURCES.flatMap(([r]) => (access[r] === 'none' ? [] : [`${r}:${access[r]}` as Scope]));
    const rate_limit: Partial<RateLimit> = {};
    for (const [k] of LIMITS) {
      const v = limits[k].trim();
      if (v !== '' && Number(v) !== base[k]) rate_limit[k] = Number(v);
    }
    const values: KeyFormValues = { name: name.trim(), scopes, ...(Object.keys(rate_limit).length > 0 && { rate_limit }) };
    if (isNew) {
      values.environment = environment;
      if (expiry === 'date' && expiryDate !== '') values.expires_at = new Date(`${expiryDate}T23:59:59`).toISOString();
      else if (expiry !== 'none' && expiry !== 'date') values.expires_at = new Date(Date.now() + Number(expiry) * 86_400_000).toISOString();
    }
    onSubmit(values);
  };

  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  return (
    <form onSubmit={submit} className="form">
      <div className="field">
        <label htmlFor={`${id}-name`}>Name</label>
        <input id={`${id}-name`} value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} autoComplete="off" aria-describedby={`${id}-name-hint`} />
        <span id={`${id}-name-hint`} className="hint">
          Unique among your keys, e.g. “Production backend”.
        </span>
      </div>

      <fieldset>
        <legend>Permissions</legend>
        <p className="hint">Give the key only what it needs. Write includes read.</p>
        {RESOURCES.map(([r, label]) => (
          <fieldset key={r} className="scope-row">
            <legend>{label}</legend>
            {(['none', 'read', 'write'] as const).map((a) => (
              <label key={a} className="radio">
                <input type="radio" name={`${id}-${r}`} value={a} checked={access[r] === a} onChange={() => setAccess({ ...access, [r]: a })} />
                {a === 'none' ? 'No access' : a === 'read' ? 'Read' : 'Read and write'}
              </label>
            ))}
          </fieldset>
        ))}
      </fieldset>

      {isNew && (
        <fieldset>
          <legend>Environment</legend>
          {(['live', 'test'] as const).map((env) => (
            <label key={env} className="radio">
              <input type="radio" name={`${id}-env`} value={env} checked={environment === env} onChange={() => setEnvironment(env)} />
              {env === 'live' ? 'Live (kw_live_…): your real data' : 'Test (kw_test_…): test data only'}
            </label>
          ))}
        </fieldset>
      )}

      {isNew && (
        <div className="field">
          <label htmlFor={`${id}-expiry`}>Expires</label>
          <select id={`${id}-expiry`} value={expiry} onChange={(e) => setExpiry(e.target.value as Expiry)}>
            <option value="none">Never</option>
            <option value="30">In 30 days</option>
            <option value="60">In 60 days</option>
            <option value="90">In 90 days</option>
            <option value="date">On a date…</option>
          </select>
          {expiry === 'date' && (
            <>
              <label htmlFor={`${id}-date`}>Expiry date</label>
              <input id={`${id}-date`} type="date" min={tomorrow} value={expiryDate} onChange={(e) => setExpiryDate(e.target.value)} required />
            </>
          )}
        </div>
      )}

      <fieldset>
        <legend>Rate limits</legend>
        <p className="hint">{isNew ? 'Leave empty for the default.' : 'Requests allowed per window.'}</p>
        <div className="limits">
          {LIMITS.map(([k, label, d]) => (
            <div key={k} className="field">
              <label htmlFor={`${id}-${k}`}>{label}</label>
              <input
                id={`${id}-${k}`}
                type="number"
                inputMode="numeric"
                min={1}
                step={1}
                placeholder={String(d)}
                value={limits[k]}
                onChange={(e) => setLimits({ ...limits, [k]: e.target.value })}
                aria-describedby={`${id}-${k}-hint`}
              />
              <span id={`${id}-${k}-hint`} className="hint">
                Default: {d.toLocaleString()}
              </span>
            </div>
          ))}
        </div>
      </fieldset>

      <ErrorNote error={error} />
      <div className="actions">
        <Button type="submit" className="button primary" isDisabled={pending}>
          {pending ? 'Saving…' : submitLabel}
        </Button>
        <Button className="button" onPress={onCancel}>
          Cancel
        </Button>
      </div>
    </form>
  );
}
