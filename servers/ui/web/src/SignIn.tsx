import { useState, type FormEvent } from 'react';
import { useTitle } from './hooks';

export function SignIn({ onSignIn }: { onSignIn: (token: string) => Promise<void> }) {
  useTitle('Sign in');
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onSignIn(token.trim());
    } catch (failure) {
      setError((failure as Error).message);
      setBusy(false);
    }
  };

  return (
    <main className="page narrow sign-in">
      <p className="brand">outbox-sync</p>
      <h1>Sign in to the outbox</h1>
      <p>Paste an outbox page token (one of the tokens in <code>OUTBOX_SYNC_UI_TOKENS</code>).</p>
      <form onSubmit={submit}>
        <label htmlFor="token">Token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          required
          value={token}
          onChange={(event) => setToken(event.target.value)}
          aria-describedby={error ? 'sign-in-error' : undefined}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      {error && (
        <p id="sign-in-error" role="alert" className="error">
          {error}
        </p>
      )}
    </main>
  );
}
