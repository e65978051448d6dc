import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, type Environment } from '../api';
import { KeyForm, type KeyFormValues } from '../components/KeyForm';
import { ModalDialog } from '../components/ModalDialog';
import { SecretDialog } from '../components/SecretDialog';

/**
 * Create key, then its secret once. The answer is kept in this component's state for the dialog
 * and nowhere else: not `useMutation` (its cache keeps results) and not `setQueryData`; the list is
 * refetched instead.
 */
export function CreateKey({ mode, onDone }: { mode: Environment; onDone: () => void }) {
  const queryClient = useQueryClient();
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [issued, setIssued] = useState<{ secret: string; name: string } | null>(null);

  const create = async (v: KeyFormValues) => {
    setPending(true);
    setError(null);
    const env = v.environment ?? mode;
    try {
      const r = await api(env).POST('/v1/keys', { body: { name: v.name, scopes: v.scopes, environment: env, ...(v.expires_at && { expires_at: v.expires_at }), ...(v.rate_limit && { rate_limit: v.rate_limit }) } });
      if (r.key === null) throw new Error('the API answered no secret');
      setIssued({ secret: r.key, name: r.name });
      void queryClient.invalidateQueries({ queryKey: ['keys'] });
    } catch (err) {
      setError(err);
    } finally {
      setPending(false);
    }
  };

  if (issued !== null)
    return (
      <SecretDialog
        secret={issued.secret}
        name={issued.name}
        onClose={() => {
          setIssued(null);
          onDone();
        }}
      />
    );
  return (
    <ModalDialog title="Create an API key" onClose={onDone}>
      <KeyForm isNew submitLabel="Create key" pending={pending} error={error} onSubmit={(v) => void create(v)} onCancel={onDone} defaultEnvironment={mode} />
    </ModalDialog>
  );
}
