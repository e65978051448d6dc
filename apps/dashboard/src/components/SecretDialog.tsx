import { useState } from 'react';
import { Button } from 'react-aria-components';
import { ModalDialog } from './ModalDialog';

/**
 * The one place a secret is ever shown. It arrives as a prop from the call that created or
 * rotated the key, lives in this dialog's state only (never in the query cache or any storage),
 * and is gone from the DOM once the dialog closes. Only "Done" closes it: a stray click or Escape
 * must not lose a secret that cannot be shown again.
 */
export function SecretDialog({ secret, name, onClose }: { secret: string; name: string; onClose: () => void }) {
  const [copied, setCopied] = useState<'no' | 'yes' | 'failed'>('no');
  const copy = () => {
    navigator.clipboard.writeText(secret).then(
      () => setCopied('yes'),
      () => setCopied('failed'),
    );
  };
  return (
    <ModalDialog title="Copy your new API key" onClose={onClose} locked role="alertdialog">
      <p className="warning">
        This is the only time the secret of “{name}” is shown: it will not be shown again. Copy it now and keep it somewhere safe, such as an environment variable on your server. If you lose it, regenerate the key.
      </p>
      <code className="secret" aria-label="Your new API key">
        {secret}
      </code>
      <p role="status" className="muted">
        {copied === 'yes' ? 'Copied to the clipboard.' : copied === 'failed' ? 'Could not copy: select the key above and copy it yourself.' : ''}
      </p>
      <div className="actions">
        <Button className="button primary" onPress={copy}>
          Copy
        </Button>
        <Button className="button" onPress={onClose}>
          Done
        </Button>
      </div>
    </ModalDialog>
  );
}
