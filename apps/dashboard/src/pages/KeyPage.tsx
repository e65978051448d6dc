import { useQuery, useQueryClient } from '@tanstack/react-query';
import { lazy, Suspense, useState } from 'react';
import { Button, Link, Switch, Tab, TabList, TabPanel, Tabs } from 'react-aria-components';
import { api, type Environment, type KeyView } from '../api';
import { KeyForm, type KeyFormValues } from '../components/KeyForm';
import { SecretDialog } from '../components/SecretDialog';
import { ModalDialog } from '../components/ModalDialog';
import { ErrorNote, Spinner, StatusBadge } from '../components/ui';
import { count, when } from '../format';
import { href } from '../router';
import { useCan } from '../session';
import { KeyLogs } from './KeyLogs';

// The chart library loads with the Usage tab, not with the first page.
const UsageChart = lazy(() => import('./UsageChart'));

const keyKey = (mode: Environment, id: string) => ['keys', mode, 'one', id] as const;

/** One key: its details, the Enabled switch, Edit, Regenerate, Revoke, and its Logs and Usage. */
export function KeyPage({ id, mode }: { id: string; mode: Environment }) {
  const canWrite = useCan('keys:write');
  const queryClient = useQueryClient();
  const key = useQuery({ queryKey: keyKey(mode, id), queryFn: () => api(mode).GET('/v1/keys/{id}', { params: { path: { id } } }) });
  const [dialog, setDialog] = useState<'edit' | 'regenerate' | 'revoke' | null>(null);
  const [toggleError, setToggleError] = useState<unknown>(null);
  const [toggling, setToggling] = useState(false);

  const refresh = () => queryClient.invalidateQueries({ queryKey: ['keys', mode] });

  if (key.isPending) return <Spinner label="Loading the key…" />;
  if (key.isError)
    return (
      <section>
        <h1>API key</h1>
        <ErrorNote error={key.error} />
        <Link href={href('/')}>Back to API access</Link>
      </section>
    );
  const k = key.data;
  const revoked = k.status === 'revoked';

  const setEnabled = async (enabled: boolean) => {
    setToggling(true);
    setToggleError(null);
    try {
      const updated = await api(mode).PATCH('/v1/keys/{id}', { params: { path: { id } }, body: { enabled } });
      queryClient.setQueryData(keyKey(mode, id), updated);
      void refresh();
    } catch (err) {
      setToggleError(err);
    } finally {
      setToggling(false);
    }
  };

  return (
    <section aria-labelledby="key-title">
      <p>
        <Link href={href('/')}>← API access</Link>
      </p>
      <div className="page-head">
        <h1 id="key-title">{k.name}</h1>
        <StatusBadge status={k.status} />
      </div>

      <div className="key-controls">
        <Switch className="switch" isSelected={k.enabled && !revoked} isDisabled={!canWrite || revoked || toggling} onChange={(on) => void setEnabled(on)}>
          <span className="switch-track" aria-hidden="true">
            <span className="switch-thumb" />
          </span>
          Enabled
        </Switch>
        {canWrite && !revoked && (
          <div className="actions">
            <Button className="button" onPress={() => setDialog('edit')}>
              Edit
            </Button>
            <Button className="button" onPress={() => setDialog('regenerate')}>
              Regenerate
            </Button>
            <Button className="button danger" onPress={() => setDialog('revoke')}>
              Revoke
            </Button>
          </div>
        )}
      </div>
      <ErrorNote error={toggleError} />

      <dl className="details">
        <dt>Prefix</dt>
        <dd>
          <code>{k.prefix}</code>
        </dd>
        <dt>Environment</dt>
        <dd>{k.environment === 'live' ? 'Live' : 'Test'}</dd>
        <dt>Scopes</dt>
        <dd>{k.scopes.length === 0 ? 'None' : k.scopes.join(', ')}</dd>
        <dt>Created</dt>
        <dd>{when(k.created_at)}</dd>
        <dt>Expires</dt>
        <dd>{when(k.expires_at, 'Never')}</dd>
        <dt>Last used</dt>
        <dd>{when(k.last_used_at)}</dd>
        {k.previous_secret_last_used_at !== null && (
          <>
            <dt>Previous secret last used</dt>
            <dd>{when(k.previous_secret_last_used_at)}</dd>
          </>
        )}
        <dt>Rate limits</dt>
        <dd>
          {count(k.rate_limit.burst_per_second)}/s, {count(k.rate_limit.per_minute)}/min, {count(k.rate_limit.per_hour)}/h, {count(k.rate_limit.daily)}/day
        </dd>
      </dl>

      <Tabs className="tabs">
        <TabList aria-label="Key activity" className="tablist">
          <Tab id="logs" className="tab">
            Logs
          </Tab>
          <Tab id="usage" className="tab">
            Usage
          </Tab>
        </TabList>
        <TabPanel id="logs" className="tabpanel">
          <KeyLogs id={id} mode={mode} />
        </TabPanel>
        <TabPanel id="usage" className="tabpanel">
          <Suspense fallback={<Spinner label="Loading the chart…" />}>
            <UsageChart id={id} mode={mode} />
          </Suspense>
        </TabPanel>
      </Tabs>

      {dialog === 'edit' && <EditKey k={k} mode={mode} onDone={() => setDialog(null)} />}
      {dialog === 'regenerate' && <RegenerateKey k={k} mode={mode} onDone={() => setDialog(null)} />}
      {dialog === 'revoke' && <RevokeKey k={k} mode={mode} onDone={() => setDialog(null)} />}
    </section>
  );
}

interface KeyDialogProps {
  k: KeyView;
  mode: Environment;
  onDone: () => void;
}

/** A change of the key: pending and error state, and the key's queries refreshed after. */
function useKeyChange(mode: Environment) {
  const queryClient = useQueryClient();
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (change: () => Promise<unknown>): Promise<boolean> => {
    setPending(true);
    setError(null);
    try {
      await change();
      void queryClient.invalidateQueries({ queryKey: ['keys', mode] });
      return true;
    } catch (err) {
      setError(err);
      return false;
    } finally {
      setPending(false);
    }
  };
  return { pending, error, run };
}

function EditKey({ k, mode, onDone }: KeyDialogProps) {
  const { pending, error, run } = useKeyChange(mode);
  const save = async (v: KeyFormValues) => {
    const body = { ...(v.name !== k.name && { name: v.name }), scopes: v.scopes, ...(v.rate_limit && { rate_limit: v.rate_limit }) };
    if (await run(() => api(mode).PATCH('/v1/keys/{id}', { params: { path: { id: k.id } }, body }))) onDone();
  };
  return (
    <ModalDialog title={`Edit “${k.name}”`} onClose={onDone}>
      <KeyForm initial={k} isNew={false} submitLabel="Save changes" pending={pending} error={error} onSubmit={(v) => void save(v)} onCancel={onDone} />
    </ModalDialog>
  );
}

const GRACE = [
  [0, 'None: the current secret stops working at once'],
  [3600, '1 hour: the current secret keeps working for an hour'],
  [86_400, '24 hours: the current secret keeps working for a day'],
] as const;

/** Regenerate: a grace period, then the new secret once (kept in this dialog's state only). */
function RegenerateKey({ k, mode, onDone }: KeyDialogProps) {
  const { pending, error, run } = useKeyChange(mode);
  const [grace, setGrace] = useState<number>(0);
  const [secret, setSecret] = useState<string | null>(null);
  const regenerate = async () => {
    await run(async () => {
      const r = await api(mode).POST('/v1/keys/{id}/rotate', { params: { path: { id: k.id } }, body: grace === 0 ? {} : { grace_period_seconds: grace } });
      if (r.key === null) throw new Error('the API answered no secret');
      setSecret(r.key);
    });
  };
  if (secret !== null)
    return (
      <SecretDialog
        secret={secret}
        name={k.name}
        onClose={() => {
          setSecret(null);
          onDone();
        }}
      />
    );
  return (
    <ModalDialog title={`Regenerate “${k.name}”`} onClose={onDone}>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          void regenerate();
        }}
      >
        <p>A new secret (with a new prefix) replaces the current one. Its “last used” starts again at Never.</p>
        <fieldset>
          <legend>Grace period for the current secret</legend>
          {GRACE.map(([s, label]) => (
            <label key={s} className="radio">
              <input type="radio" name="grace" value={s} checked={grace === s} onChange={() => setGrace(s)} />
              {label}
            </label>
          ))}
        </fieldset>
        <ErrorNote error={error} />
        <div className="actions">
          <Button type="submit" className="button primary" isDisabled={pending}>
            Regenerate
          </Button>
          <Button className="button" onPress={onDone}>
            Cancel
          </Button>
        </div>
      </form>
    </ModalDialog>
  );
}

/** Revoke, confirmed by typing the key's name: final, the key can never be switched on again. */
function RevokeKey({ k, mode, onDone }: KeyDialogProps) {
  const { pending, error, run } = useKeyChange(mode);
  const [typed, setTyped] = useState('');
  const revoke = async () => {
    if (await run(() => api(mode).POST('/v1/keys/{id}/revoke', { params: { path: { id: k.id } }, body: {} }))) onDone();
  };
  return (
    <ModalDialog title={`Revoke “${k.name}”`} onClose={onDone} role="alertdialog">
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          if (typed === k.name) void revoke();
        }}
      >
        <p className="warning">Revoking is final: every request with this key fails from now on, and it cannot be switched on again.</p>
        <div className="field">
          <label htmlFor="revoke-confirm">Type the key’s name, “{k.name}”, to confirm</label>
          <input id="revoke-confirm" value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" />
        </div>
        <ErrorNote error={error} />
        <div className="actions">
          <Button type="submit" className="button danger" isDisabled={pending || typed !== k.name}>
            Revoke
          </Button>
          <Button className="button" onPress={onDone}>
            Cancel
          </Button>
        </div>
      </form>
    </ModalDialog>
  );
}

